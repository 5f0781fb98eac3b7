"""
Throttling of failed sign-ins (token endpoint, admin login), per client and per IP address.

Only failures are counted (django-ratelimit's counters, in the shared cache): a client that asks
for a few tokens a minute with the right secret is never slowed down, while guessing a secret or
a password is held to ``EXPORTBULK_AUTH_FAILURE_RATE`` (e.g. ``10/m``) per client id or username,
and per source address (``REMOTE_ADDR``: behind a reverse proxy, have it set that to the client's).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import get_usage


def _named(field: str) -> Callable[[str, HttpRequest], str]:
    """A ratelimit key: the client id or username the request signs in as ("" for none)."""

    def key(group: str, request: HttpRequest) -> str:
        value = request.POST.get(field, "")
        if not value and field == "client_id":
            value = _basic_auth_user(request)
        return f"{field}:{value}"

    return key


def _basic_auth_user(request: HttpRequest) -> str:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _keys(field: str) -> list[str | Callable[[str, HttpRequest], str]]:
    return ["ip", _named(field)]


def is_throttled(request: HttpRequest, group: str, field: str) -> bool:
    """Whether the client or the address has used up its failed attempts."""
    rate = settings.EXPORTBULK_AUTH_FAILURE_RATE
    for key in _keys(field):
        usage = get_usage(request, group=group, key=key, rate=rate, increment=False)
        if usage and usage["count"] >= usage["limit"]:
            return True
    return False


def record_failure(request: HttpRequest, group: str, field: str) -> None:
    for key in _keys(field):
        get_usage(request, group=group, key=key, rate=settings.EXPORTBULK_AUTH_FAILURE_RATE, increment=True)


def too_many(as_json: bool) -> HttpResponse:
    message = "Too many failed attempts; try again later."
    if as_json:
        response: HttpResponse = JsonResponse(
            {"error": "rate_limited", "error_description": message}, status=429
        )
    else:
        response = HttpResponse(message, status=429, content_type="text/plain")
    response["Retry-After"] = "60"
    return response


def throttled_admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login view; a failed POST (the form shown again) counts as a failure."""
    from django.contrib import admin

    group = "exportbulk.admin-login"
    if request.method == "POST":
        if is_throttled(request, group, "username"):
            return too_many(as_json=False)
        response = admin.site.login(request)
        if response.status_code == 200:
            record_failure(request, group, "username")
        return response
    return admin.site.login(request)
