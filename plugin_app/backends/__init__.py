"""Choosing the course backend: modulestore inside edx-platform, OLX directories elsewhere."""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from plugin_app.backends.base import CourseBackend

_BUILTIN = {
    "modulestore": "plugin_app.backends.modulestore.ModulestoreBackend",
    "olx_directory": "plugin_app.backends.olx_directory.OlxDirectoryBackend",
}


def running_in_platform() -> bool:
    """Whether edx-platform's modulestore can be imported (we run in the LMS or CMS)."""
    return importlib.util.find_spec("xmodule") is not None


def default_backend_name() -> str:
    return "modulestore" if running_in_platform() else "olx_directory"


@functools.cache
def get_backend() -> CourseBackend:
    """The configured course backend (``EXPORTBULK_COURSE_BACKEND``), built once per process."""
    name = settings.EXPORTBULK_COURSE_BACKEND or default_backend_name()
    backend: type[CourseBackend] = import_string(_BUILTIN.get(name, name))
    return backend.from_settings()


@receiver(setting_changed)
def _forget_backend(setting: str, **kwargs: Any) -> None:
    if setting in ("EXPORTBULK_COURSE_BACKEND", "EXPORTBULK_OLX_ROOT"):
        get_backend.cache_clear()
