"""REST views of bulk content upload (Studio): ``POST .../content/bulk/upload``, its status and cancel."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from plugin_app import api
from plugin_app.data import ProcessKind, RowError, UploadMode
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.envelope import envelope
from plugin_app.rest_api.v0.serializers import BulkUploadRequestSerializer
from plugin_app.rest_api.v0.views import (
    BulkAPIView,
    _CancelView,
    _list_schema,
    _StatusListView,
    _StatusView,
    caller,
)


class BulkUploadView(BulkAPIView):
    """
    Upload many files into courses from a CSV manifest and a ZIP.

    ``POST /api/courses/v0/content/bulk/upload`` (multipart/form-data): ``file`` = the CSV
    manifest, ``content`` = the ZIP; the mode (``upload``, ``publish`` or ``link``) in the
    ``operation-mode`` header or a ``mode`` field. 200 with ``result.processId``; 400 with
    every error in ``result.errors`` (nothing is stored).
    """

    api_id = "api.bulkupload.content"

    def max_body_bytes(self, content_type: str = "") -> int:
        # The ZIP and the manifest at their limits, and room for the form's own lines.
        return int(
            settings.EXPORTBULK_UPLOAD_MAX_UNCOMPRESSED_BYTES
            + settings.EXPORTBULK_UPLOAD_MAX_MANIFEST_BYTES
            + 1024 * 1024
        )

    @extend_schema(
        operation_id="bulk_upload",
        request={"multipart/form-data": BulkUploadRequestSerializer},
        parameters=[
            OpenApiParameter(
                "operation-mode",
                str,
                OpenApiParameter.HEADER,
                enum=[m.value for m in UploadMode],
                description="The mode; the form field 'mode' is read when the header is absent.",
            )
        ],
        responses={
            200: schema.UploadQueuedEnvelope,
            400: schema.RowErrorsEnvelope,
            413: schema.ErrorSerializer,
            429: OpenApiResponse(schema.ErrorSerializer, "Too many active processes; see Retry-After."),
            503: schema.ErrorSerializer,
            **schema.AUTH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        errors = []
        manifest, content = request.FILES.get("file"), request.FILES.get("content")
        if manifest is None:
            errors.append(RowError(None, "file", "The CSV manifest (form field 'file') is missing."))
        if content is None:
            errors.append(RowError(None, "content", "The content ZIP (form field 'content') is missing."))
        form: Any = request.data  # a QueryDict: the parsers are multipart and form
        mode_name = (request.headers.get("operation-mode") or form.get("mode") or "").strip().lower()
        if mode_name not in UploadMode.__members__.values():
            errors.append(RowError(None, "operation-mode", "The mode must be one of upload, publish, link."))
        limit = settings.EXPORTBULK_UPLOAD_MAX_MANIFEST_BYTES
        if manifest is not None and manifest.size > limit:
            errors.append(RowError(None, "file", f"The manifest is larger than {limit} bytes."))
        # The ZIP holds at most this much once uncompressed; a bigger ZIP is padded with junk.
        limit = settings.EXPORTBULK_UPLOAD_MAX_UNCOMPRESSED_BYTES
        if content is not None and content.size > limit:
            message = f"The ZIP is {content.size} bytes; the limit is {limit}."
            errors.append(RowError(None, "content", message))
        if errors:
            return self._rejected(
                "INVALID_REQUEST", "The request is incomplete; nothing was uploaded.", errors
            )
        try:
            process_id = api.create_upload(caller(request), manifest.read(), content, UploadMode(mode_name))
        except api.UploadRejected as exc:
            return self._rejected(exc.code, exc.message, exc.errors)
        return Response(envelope(self.api_id, {"processId": process_id}))

    def _rejected(self, code: str, message: str, errors: list[RowError]) -> Response:
        result = {"errors": [error.as_dict() for error in errors]}
        return Response(envelope(self.api_id, result, code, message), status=400)


class UploadCancelView(_CancelView):
    """``POST /api/courses/v0/content/bulk/upload/status/<processId>/cancel``: cancel an upload."""

    kind, api_id = ProcessKind.UPLOAD, "api.bulkupload.cancel"


class UploadStatusView(_StatusView):
    """``GET /api/courses/v0/content/bulk/upload/status/<processId>``: one upload of the caller."""

    kind, api_id = ProcessKind.UPLOAD, "api.bulkupload.status"


@_list_schema("uploads")
class UploadStatusListView(_StatusListView):
    """``GET /api/courses/v0/content/bulk/upload/status/list``: the caller's uploads, newest first
    (under ``uploads``, as Sunbird's API names them)."""

    kind, api_id, list_key = ProcessKind.UPLOAD, "api.bulkupload.status.list", "uploads"
