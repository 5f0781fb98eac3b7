"""
REST views of course backups (Studio): start a run, read its status, list a course's versions.
``backups`` does the work.

Same authentication, envelope, 404 and per-course write-access rules as the export views,
whose bases these share.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from plugin_app import backup_index, backups, contexts, storage
from plugin_app.data import ProcessKind
from plugin_app.models import BackupVersion
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.serializers import BackupRequestSerializer
from plugin_app.rest_api.v0.views import (
    BulkAPIView,
    _BoundedJSONParser,
    _CancelView,
    _list_schema,
    _StatusListView,
    _StatusView,
    api_error,
    caller,
    selected_courses,
    with_manifest,
)


class BackupView(BulkAPIView):
    """
    Back up courses to the bucket as dated versions, skipping those whose newest backup is current.

    ``POST /api/courses/v0/backup/`` with ``{"courses": [course ids or library keys]}``,
    ``{"org": "X"}`` or ``{"all": true}`` (courses and v2 libraries the caller may author), and
    optionally ``"changed_only": false``. A library is backed up as Learning Core's zip.
    Always asynchronous: 202 ``{"processId": ...}``; see ``backup/status/<processId>``. Courses
    the caller may not author fail at once, with their reason.
    """

    parser_classes = [_BoundedJSONParser]

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
    def post(self, request: Request) -> Response:
        selected = selected_courses(request, BackupRequestSerializer, "back up", contexts.authorable)
        if isinstance(selected, Response):
            return selected
        body, course_ids = selected
        process_id = backups.start_backup(caller(request), course_ids, body["changed_only"])
        return Response({"processId": process_id}, status=status.HTTP_202_ACCEPTED)


class BackupStatusView(_StatusView):
    """``GET /api/courses/v0/backup/status/<processId>``: one backup run of the caller, course by course.

    Once the run has ended, ``result.manifest`` is a download URL of its manifest.
    """

    kind, api_id = ProcessKind.BACKUP, "api.backup.status"

    @extend_schema(responses={200: schema.ProcessEnvelope, 404: schema.EmptyEnvelope, **schema.AUTH_ERRORS})
    def get(self, request: Request, process_id: str) -> Response:
        response: Response = super().get(request, process_id)
        result = response.data["result"]
        for item in result.get("items") or []:
            if item.get("url"):
                item["url"] = request.build_absolute_uri(item["url"])
        with_manifest(result, self.kind, request)
        return response


@_list_schema("backups")
class BackupStatusListView(_StatusListView):
    """``GET /api/courses/v0/backup/status/list``: the caller's backup runs, newest first."""

    kind, api_id, list_key = ProcessKind.BACKUP, "api.backup.status.list", "backups"


class BackupCancelView(_CancelView):
    """``POST /api/courses/v0/backup/status/<processId>/cancel``: courses not started are canceled;
    one being uploaded stops between parts, leaving no object. The run then ends Canceled."""

    kind, api_id = ProcessKind.BACKUP, "api.backup.cancel"


class _VersionSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    created = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.URLField()


class _VersionsSerializer(serializers.Serializer[Any]):
    course_id = serializers.CharField()
    versions = _VersionSerializer(many=True)


class BackupVersionsView(BulkAPIView):
    """``GET /api/courses/v0/backup/versions/<course_id>``: the course's (or library's) backups,
    newest first.

    Read from the bucket, the source of truth: the course's stored objects, with what the
    database (reconciled with the bucket's run manifests) knows of each. Needs Studio write
    access to the course (edit rights on a library), as backing it up does (403); a course that
    neither exists nor has a backup is a 404 (a deleted course's backups are listed: they are how
    it comes back).
    """

    @extend_schema(
        responses={200: _VersionsSerializer, 400: schema.ErrorSerializer, 403: schema.ErrorSerializer,
                   404: schema.ErrorSerializer, **schema.AUTH_ERRORS},
    )  # fmt: skip
    def get(self, request: Request, course_id: str) -> Response:
        if contexts.invalid_key(course_id):
            return api_error(400, f"Invalid course key: {course_id}", "invalid_course_key")
        if not contexts.may_author(caller(request), course_id):
            return api_error(403, contexts.permission_denied(course_id), "permission_denied")
        stored = backup_index.reconcile(course_id)
        if not stored and not contexts.exists(course_id):
            return api_error(
                404, f"Course not found: {course_id} does not exist and has no backup.", "not_found"
            )
        versions = BackupVersion.objects.filter(name__in=stored, size__isnull=False).order_by("-created")
        answer = [
            {
                "key": v.name,
                "created": v.created.isoformat(),
                "size": v.size,
                "sha256": v.sha256,
                "url": request.build_absolute_uri(storage.download_url(v.name)),
            }
            for v in versions
        ]
        return Response({"course_id": course_id, "versions": answer})
