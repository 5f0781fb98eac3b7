"""REST views of bulk export (Studio): the seed's ``POST /api/courses/v0/export/``, its status and cancel."""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from plugin_app import api, export_tasks
from plugin_app.content_versions import course_versions
from plugin_app.data import ProcessKind
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.envelope import absolute_urls
from plugin_app.rest_api.v0.serializers import ContentVersionsRequestSerializer, ExportRequestSerializer
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
)
from plugin_app.rest_api.v0.views import (
    _flatten as flatten,
)


class ExportView(BulkAPIView):
    """
    Export courses to the bucket as OLX ``.tar.gz`` files.

    ``POST /api/courses/v0/export/`` with ``{"courses": [course ids]}``, ``{"org": "X"}`` or
    ``{"all": true}`` (courses the caller may author), and optionally ``"async": true``.

    * 200 ``{"successful_uploads": {id: url}, "failed_uploads": {}}``: every course exported,
      with the export anchor's ``upload_urls`` and ``upload_task_ids``, ``upload_keys`` (bucket
      keys) and ``pending_uploads`` (still running when ``EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS`` ran out);
    * 400 with the same keys when any course failed (the others are kept), or
      ``{"developer_message", "error_code"}`` for a malformed body (nothing exported);
    * 202 ``{"processId": ...}`` for ``"async": true`` (with each course's task id, key and URL,
      as in the answers above); see ``export/status/<processId>``.
    """

    parser_classes = [_BoundedJSONParser]

    @extend_schema(
        operation_id="bulk_export",
        request=ExportRequestSerializer,
        responses={
            200: schema.ExportResultSerializer,
            202: schema.ExportAcceptedSerializer,
            400: OpenApiResponse(
                schema.EXPORT_FAILURE,
                "Some course failed (the others are kept), or the body is malformed (nothing exported).",
            ),
            413: schema.ErrorSerializer,
            415: schema.ErrorSerializer,
            429: OpenApiResponse(schema.ErrorSerializer, "Too many active processes; see Retry-After."),
            503: schema.ErrorSerializer,
            **schema.AUTH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        selected = selected_courses(request, ExportRequestSerializer, "export")
        if isinstance(selected, Response):
            return selected
        body, course_ids = selected
        limit = settings.EXPORTBULK_MAX_COURSES_PER_REQUEST
        if not body["run_async"] and len(course_ids) > limit:
            return api_error(
                400,
                f"{len(course_ids)} courses selected; at most {limit} per request, or use async.",
                "too_many",
            )
        if body["run_async"]:
            process_id = api.create_export(caller(request), course_ids)
            tasks = export_tasks.export_answer(process_id)
            accepted = {
                "processId": process_id,
                "upload_urls": absolute_urls(tasks.upload_urls, request),
                "upload_task_ids": tasks.upload_task_ids,
                "upload_keys": tasks.upload_keys,
            }
            return Response(accepted, status=status.HTTP_202_ACCEPTED)
        process_id = export_tasks.export_and_wait(caller(request), course_ids)
        answer = export_tasks.export_answer(process_id)
        # processId: for its report and files, as an asynchronous export's.
        exported = {"processId": process_id, **asdict(answer)}
        exported["successful_uploads"] = absolute_urls(answer.successful_uploads, request)
        exported["upload_urls"] = absolute_urls(answer.upload_urls, request)
        return Response(exported, status=400 if answer.failed_uploads else 200)


class ExportTaskView(BulkAPIView):
    """
    ``GET /api/courses/v0/export/<course_id>/?task_id=<id>``: the state of one course's export
    task, as the export anchor answers it: ``{"state": ...}`` in django-user-tasks' names, with
    ``error`` when it failed or was canceled, ``upload_url`` and ``upload_key`` once it succeeded.
    404 ``{"detail": "Task not found"}`` for an unknown id, another user's, or another course's.
    """

    @extend_schema(
        operation_id="export_task_state",
        parameters=[OpenApiParameter("task_id", str, required=True, description="An id of upload_task_ids.")],
        responses={
            200: schema.ExportTaskStateSerializer,
            400: schema.ErrorSerializer,
            404: schema.NotFoundSerializer,
        },
    )
    def get(self, request: Request, course_id: str) -> Response:
        task_id = request.query_params.get("task_id")
        if not task_id:
            return api_error(400, "task_id: this query parameter is required.", "invalid_request")
        try:
            return Response(export_tasks.task_state(caller(request), course_id, task_id))
        except export_tasks.TaskNotFound:
            return Response({"detail": "Task not found"}, status=status.HTTP_404_NOT_FOUND)


class ContentVersionsView(BulkAPIView):
    """
    ``POST /api/courses/v0/export/versions/`` with ``{"courses": [ids]}`` (1 to 200): what an
    export of each course would hold, to tell when a copy is stale without exporting. Answers
    ``{"versions": {id: {published_version, static_assets, transcripts}}, "missing": [ids]}``;
    ``missing`` lists, in request order, the ids that name no course the caller may export.
    """

    parser_classes = [_BoundedJSONParser]

    @extend_schema(
        operation_id="export_content_versions",
        request=ContentVersionsRequestSerializer,
        responses={200: schema.ContentVersionsSerializer, 400: schema.ErrorSerializer, **schema.AUTH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = ContentVersionsRequestSerializer(data=request.data)
        if not serializer.is_valid():
            return api_error(400, flatten(serializer.errors), "invalid_request")
        versions, missing = course_versions(caller(request), serializer.validated_data["courses"])
        return Response({"versions": versions, "missing": missing})


class ExportStatusView(_StatusView):
    """``GET /api/courses/v0/export/status/<processId>``: one export process of the caller."""

    kind, api_id = ProcessKind.EXPORT, "api.bulkexport.status"


@_list_schema("exports")
class ExportStatusListView(_StatusListView):
    """``GET /api/courses/v0/export/status/list``: the caller's export processes, newest first."""

    kind, api_id, list_key = ProcessKind.EXPORT, "api.bulkexport.status.list", "exports"


class ExportCancelView(_CancelView):
    """``POST /api/courses/v0/export/status/<processId>/cancel``: cancel an export of the caller."""

    kind, api_id = ProcessKind.EXPORT, "api.bulkexport.cancel"
