"""
Throttling of failed sign-ins (token endpoint, admin login), per source address.

Only failures are counted (django-ratelimit's counters, in the shared cache), and only per
source address, never per client id or username: those are no secrets, so counting per name
would let anyone who knows one lock its owner out from everywhere. Guessing a secret or a
password from one address is held to ``EXPORTBULK_AUTH_FAILURE_RATE`` (e.g. ``10/m``), whichever
client or user it tries (a per-name count at that address would add nothing); the right secret
from another address is never slowed down. The address is ``REMOTE_ADDR``, the peer of the
connection: ``X-Forwarded-For`` is not trusted (behind a reverse proxy, have it pass the peer).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.core import get_usage

# Seconds a held address waits: the counting window of a per-minute rate.
RETRY_AFTER = 60


def is_throttled(request: HttpRequest, group: str) -> bool:
    """Whether the request's address has used up its failed attempts."""
    rate = settings.EXPORTBULK_AUTH_FAILURE_RATE
    usage = get_usage(request, group=group, key="ip", rate=rate, increment=False)
    return bool(usage and usage["count"] >= usage["limit"])


def record_failure(request: HttpRequest, group: str) -> None:
    get_usage(request, group=group, key="ip", rate=settings.EXPORTBULK_AUTH_FAILURE_RATE, increment=True)


def too_many(as_json: bool) -> HttpResponse:
    message = (
        f"Too many failed sign-ins from this address; try again in {RETRY_AFTER} seconds, "
        "with the right credentials."
    )
    if as_json:
        response: HttpResponse = JsonResponse(
            {"error": "rate_limited", "error_description": message}, status=429
        )
    else:
        response = HttpResponse(message, status=429, content_type="text/plain")
    response["Retry-After"] = str(RETRY_AFTER)
    return response


def throttled_admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login view; a failed POST (the form shown again) counts as a failure."""
    from django.contrib import admin

    group = "exportbulk.admin-login"
    if request.method == "POST":
        if is_throttled(request, group):
            return too_many(as_json=False)
        response = admin.site.login(request)
        if response.status_code == 200:
            record_failure(request, group)
        return response
    return admin.site.login(request)
