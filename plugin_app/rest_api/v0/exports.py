"""REST views of bulk export (Studio): the seed's ``POST /api/courses/v0/export/``, its status and cancel."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from plugin_app import api
from plugin_app.data import ProcessKind
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.envelope import absolute_urls
from plugin_app.rest_api.v0.serializers import ExportRequestSerializer
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


class ExportView(BulkAPIView):
    """
    Export courses to the bucket as OLX ``.tar.gz`` files.

    ``POST /api/courses/v0/export/`` with ``{"courses": [course ids]}``, ``{"org": "X"}`` or
    ``{"all": true}`` (courses the caller may author), and optionally ``"async": true``.

    * 200 ``{"successful_uploads": {id: url}, "failed_uploads": {}}``: every course exported;
    * 400 with the same keys when any course failed (the others are kept), or
      ``{"developer_message", "error_code"}`` for a malformed body (nothing exported);
    * 202 ``{"processId": ...}`` for ``"async": true``; see ``export/status/<processId>``.
    """

    parser_classes = [_BoundedJSONParser]

    @extend_schema(
        operation_id="bulk_export",
        request=ExportRequestSerializer,
        responses={
            200: schema.ExportResultSerializer,
            202: schema.ProcessIdSerializer,
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
        process_id = api.create_export(caller(request), course_ids, send=body["run_async"])
        if body["run_async"]:
            return Response({"processId": process_id}, status=status.HTTP_202_ACCEPTED)
        api.run_now(process_id)
        info = api.get_process(caller(request), ProcessKind.EXPORT, process_id)
        answer = {
            "processId": process_id,  # for its report and files, as an asynchronous export's
            "successful_uploads": absolute_urls(info.successful_uploads or {}, request),
            "failed_uploads": info.failed_uploads,
        }
        return Response(answer, status=400 if info.failed_uploads else 200)


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
