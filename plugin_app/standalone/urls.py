"""URLs of the standalone project: the paths Open edX serves the same things at."""

from django.contrib import admin
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from plugin_app.standalone.courses import CourseListView
from plugin_app.standalone.oauth import AccessTokenView


class PingView(APIView):
    """An authenticated constant: the framework's floor, for benchmarks of the status API."""

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("oauth2/access_token/", AccessTokenView.as_view(), name="access-token"),
    path("api/courses/v1/courses/", CourseListView.as_view(), name="standalone-courses"),
    path("api/courses/v0/", include("plugin_app.rest_api.v0.urls", namespace="exportbulk")),
    path("standalone/ping", PingView.as_view(), name="ping"),
]
