"""URLs of the standalone project: the paths Open edX serves the same things at."""

from typing import Any

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from plugin_app.standalone.courses import CourseListView
from plugin_app.standalone.oauth import AccessTokenView
from plugin_app.standalone.throttle import throttled_admin_login
from plugin_app.standalone.users import MeView


class PingView(APIView):
    """An authenticated constant: the framework's floor, for benchmarks of the status API."""

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


def only_the_apps_endpoints(endpoints: list[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """drf-spectacular hook: keep the app's endpoints (the standalone helpers are not the product)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/courses/v0/")]


urlpatterns = [
    path("admin/login/", throttled_admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("oauth2/access_token/", AccessTokenView.as_view(), name="access-token"),
    # The LMS accepts both (MIT's pipeline posts without the slash; a redirect would lose the POST).
    path("oauth2/access_token", AccessTokenView.as_view(), name="access-token-no-slash"),
    path("api/user/v1/me", MeView.as_view(), name="standalone-me"),
    path("api/courses/v1/courses/", CourseListView.as_view(), name="standalone-courses"),
    path("api/courses/v0/", include("plugin_app.rest_api.v0.urls", namespace="exportbulk")),
    path("standalone/ping", PingView.as_view(), name="ping"),
    path("api/courses/v0/schema/", SpectacularAPIView.as_view(), name="schema"),
]
