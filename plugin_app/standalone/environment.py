"""The app's settings read from environment variables, each as the type of its default."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def settings_from_environment(defaults: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``defaults``, each replaced by its environment variable when that is set (not empty).

    Booleans take 1/0, true/false, yes/no, on/off; integers are integers; lists are a JSON list
    or comma-separated values. A value that does not read as its type is an error that names
    the variable, at start-up rather than at the first request that needs it.
    """
    settings = dict(defaults)
    for name, default in defaults.items():
        if environ.get(name, "").strip():
            settings[name] = _parse(name, environ[name].strip(), default)
    return settings


def _parse(name: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ImproperlyConfigured(f"{name}={text!r}: expected true or false (1/0, yes/no, on/off).")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={text!r}: expected a whole number.") from None
    if isinstance(default, list):
        if text.startswith("["):
            try:
                values = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ImproperlyConfigured(f"{name}: not a JSON list ({exc}).") from None
            if isinstance(values, list) and all(isinstance(v, str) for v in values):
                return values
            raise ImproperlyConfigured(f"{name}: expected a JSON list of strings.")
        return [value.strip() for value in text.split(",") if value.strip()]
    return text
