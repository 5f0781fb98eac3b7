"""
REST views of course backups (Studio): start a run, read its status. ``backups`` does the work.

Same authentication, envelope and 404 rules as the export and upload views, whose bases these share.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from plugin_app import backups, exports
from plugin_app.data import ProcessKind
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.serializers import BackupRequestSerializer
from plugin_app.rest_api.v0.views import BulkAPIView, _flatten, _StatusListView, _StatusView, api_error


class BackupView(BulkAPIView):
    """
    Back up courses to the bucket as dated versions, skipping those whose newest backup is current.

    ``POST /api/courses/v0/backup/`` with ``{"courses": [course ids]}``, ``{"org": "X"}`` or
    ``{"all": true}`` (courses the caller may author), and optionally ``"changed_only": false``.
    Always asynchronous: 202 ``{"processId": ...}``; see ``backup/status/<processId>``. Courses
    the caller may not author fail at once, with their reason.
    """

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="bulk_backup",
        request=BackupRequestSerializer,
        responses={
            202: schema.ProcessIdSerializer,
            400: OpenApiResponse(schema.ErrorSerializer, "The body is malformed, or selects no course."),
            415: schema.ErrorSerializer,
            429: OpenApiResponse(schema.ErrorSerializer, "Too many active processes; see Retry-After."),
            503: schema.ErrorSerializer,
            **schema.AUTH_ERRORS,
        },
    )
    def post(self, request):
        serializer = BackupRequestSerializer(data=request.data)
        if not serializer.is_valid():
            return api_error(400, _flatten(serializer.errors), "invalid_request")
        body = serializer.validated_data
        course_ids = body.get("courses") or exports.authorable_courses(request.user, body.get("org"))
        if not course_ids:
            return api_error(
                400, "No course to back up: you may author no course of that selection.", "no_courses"
            )
        process_id = backups.start_backup(request.user, course_ids, body["changed_only"])
        return Response({"processId": process_id}, status=status.HTTP_202_ACCEPTED)


class BackupStatusView(_StatusView):
    """``GET /api/courses/v0/backup/status/<processId>``: one backup run of the caller, course by course."""

    kind, api_id = ProcessKind.BACKUP, "api.backup.status"


class BackupStatusListView(_StatusListView):
    """``GET /api/courses/v0/backup/status/list``: the caller's backup runs, newest first."""

    kind, api_id, list_key = ProcessKind.BACKUP, "api.backup.status.list", "backups"
