"""Production settings: values from the platform's YAML config (``ENV_TOKENS``) win."""

from typing import Any

from plugin_app.settings.common import DEFAULTS


def plugin_settings(settings: Any) -> None:
    """Take each ``EXPORTBULK_*`` value from ``ENV_TOKENS`` when the YAML config sets it."""
    env_tokens = getattr(settings, "ENV_TOKENS", {}) or {}
    for name in DEFAULTS:
        if name in env_tokens:
            setattr(settings, name, env_tokens[name])
