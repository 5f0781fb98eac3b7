"""Test settings: the platform's test runs get the defaults and eager Celery is theirs to set."""

from typing import Any

from plugin_app.settings import common


def plugin_settings(settings: Any) -> None:
    common.plugin_settings(settings)
