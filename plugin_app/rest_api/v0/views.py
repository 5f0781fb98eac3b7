"""
REST views of bulk export and bulk upload (Studio). They parse and answer; ``api`` does the work.

Authentication is the platform's (JWT, OAuth2 bearer, session), configurable through
``EXPORTBULK_AUTHENTICATION_CLASSES`` so the standalone project can bring its own bearer class.
Errors outside the status envelope follow the platform: ``developer_message`` and ``error_code``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import FileResponse, Http404, HttpResponseBase
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from plugin_app import access, api, storage
from plugin_app.data import ProcessKind, RowError, UploadMode
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.envelope import absolute_urls, envelope, format_time, process_result
from plugin_app.rest_api.v0.serializers import BulkUploadRequestSerializer, ExportRequestSerializer

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def caller(request: Request) -> User:
    """The user a request is made by: authenticated, since every bulk view's permissions require it."""
    return cast("User", request.user)


def api_error(status_code: int, developer_message: str, error_code: str) -> Response:
    """An error answer in the platform's shape (``DeveloperErrorViewMixin.api_error``)."""
    return Response({"developer_message": developer_message, "error_code": error_code}, status=status_code)


class IsActiveUser(BasePermission):
    """The platform's token authentications accept deactivated users; bulk write access must not."""

    message = "This account is deactivated."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_active)


class BodyTooLarge(APIException):
    status_code, default_code = 413, "request_too_large"


class LengthRequired(APIException):
    status_code, default_code = 411, "length_required"
    default_detail = "Send the body with a Content-Length header (chunked bodies are not accepted)."


class BulkAPIView(APIView):
    """Authenticated as the platform's own APIs are; every error as JSON ``developer_message``."""

    permission_classes = [IsAuthenticated, IsActiveUser]

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [import_string(path)() for path in settings.EXPORTBULK_AUTHENTICATION_CLASSES]

    def max_body_bytes(self) -> int:
        """The largest body this endpoint reads; Django's own limit for bodies read into memory."""
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**63

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication, which may parse a form (CSRF): a body too large is never read.
        _check_declared_length(request, self.max_body_bytes())
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, api.QuotaExceeded):
            response = api_error(429, str(exc), "too_many_active_processes")
            response["Retry-After"] = str(exc.retry_after)
            return response
        if isinstance(exc, api.QueueUnavailable):
            return api_error(
                503, "The task queue is unavailable; nothing was started. Try again later.", "queue_down"
            )
        for kind, (status_code, message, code) in _REQUEST_LIMITS.items():
            if isinstance(exc, kind):
                return api_error(status_code, message, code)
        if not isinstance(exc, (APIException, Http404, PermissionDenied)):
            log.exception("Unexpected error in %s", type(self).__name__)
            return api_error(500, "Internal error; see the server logs.", "server_error")
        response = super().handle_exception(exc)
        if isinstance(exc, APIException):
            response.data = {"developer_message": _flatten(exc.detail), "error_code": exc.default_code}
        return response


def _check_declared_length(request: Request, limit: int) -> None:
    """Refuse a body by its declared length, before a byte of it is read (Django reads no more)."""
    meta = request.META
    declared = meta.get("CONTENT_LENGTH") or ""
    if not declared:
        if meta.get("HTTP_TRANSFER_ENCODING", "").lower() not in ("", "identity"):
            raise LengthRequired()
        return
    try:
        size = int(declared)
    except ValueError:
        raise ParseError("The Content-Length header is not a number.") from None
    if size > limit:
        raise BodyTooLarge(f"The request body is {size} bytes; the limit is {limit}.")


class _BoundedJSONParser(JSONParser):
    """DRF's JSON parser; JSON nested too deep for the decoder is a 400, not a 500."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None


# Django's own limits on a request (DATA_UPLOAD_MAX_*), met while DRF parses it.
_REQUEST_LIMITS = {
    RequestDataTooBig: (413, "The request body is too large.", "request_too_large"),
    TooManyFieldsSent: (400, "The request has too many form fields.", "too_many_fields"),
    TooManyFilesSent: (400, "The request has too many files.", "too_many_files"),
}


def _flatten(detail: Any) -> str:
    """Serializer errors as one readable sentence naming each field."""
    if isinstance(detail, dict):
        return " ".join(
            f"{_flatten(value)}" if field == "non_field_errors" else f"{field}: {_flatten(value)}"
            for field, value in detail.items()
        )
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


# Export -------------------------------------------------------------------------------------


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
        serializer = ExportRequestSerializer(data=request.data)
        if not serializer.is_valid():
            return api_error(400, _flatten(serializer.errors), "invalid_request")
        body = serializer.validated_data
        course_ids = body.get("courses") or api.authorable_courses(caller(request), body.get("org"))
        if not course_ids:
            return api_error(
                400, "No course to export: you may author no course of that selection.", "no_courses"
            )
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
            "successful_uploads": absolute_urls(info.successful_uploads or {}, request),
            "failed_uploads": info.failed_uploads,
        }
        return Response(answer, status=400 if info.failed_uploads else 200)


# Status -------------------------------------------------------------------------------------


class _StatusView(BulkAPIView):
    kind: ProcessKind
    api_id: str

    @extend_schema(
        responses={200: schema.ProcessEnvelope, 404: schema.EmptyEnvelope, **schema.AUTH_ERRORS},
    )
    def get(self, request: Request, process_id: str) -> Response:
        try:
            info = api.get_process(caller(request), self.kind, process_id)
        except api.ProcessNotFound:
            message = f"Process Id {process_id} is not found in the system"
            return Response(envelope(self.api_id, {}, "PROCESS_NOT_FOUND", message), status=404)
        info = access.as_allowed_now(caller(request), info)
        return Response(envelope(self.api_id, process_result(info, request)))


class ProcessStatusView(BulkAPIView):
    """``GET /api/courses/v0/processes/<processId>``: one process of the caller, whatever its kind.

    For clients that hold a process id without its kind (the CLI's ``status`` and ``download``):
    they ask once instead of trying each kind's status API and meeting a 404.
    """

    api_id = "api.bulkprocess.status"

    @extend_schema(
        responses={200: schema.AnyProcessEnvelope, 404: schema.EmptyEnvelope, **schema.AUTH_ERRORS},
    )
    def get(self, request: Request, process_id: str) -> Response:
        for kind in ProcessKind:
            try:
                info = api.get_process(caller(request), kind, process_id)
            except api.ProcessNotFound:
                continue
            info = access.as_allowed_now(caller(request), info)
            return Response(envelope(self.api_id, {**process_result(info, request), "kind": info.kind}))
        message = f"Process Id {process_id} is not found in the system"
        return Response(envelope(self.api_id, {}, "PROCESS_NOT_FOUND", message), status=404)


def _list_schema(list_key: str) -> Any:
    return extend_schema_view(
        get=extend_schema(
            parameters=[
                OpenApiParameter("page", int, description="Page number, from 1."),
                OpenApiParameter("page_size", int, description="Processes per page, 1 to 100."),
            ],
            responses={
                200: schema.page_envelope(list_key),
                400: schema.EmptyEnvelope,
                **schema.AUTH_ERRORS,
            },
        )
    )


class _StatusListView(BulkAPIView):
    kind: ProcessKind
    api_id: str
    list_key: str  # where the page lists the processes: "exports", "uploads", ...
    page_size = 20
    max_page = 1_000_000  # beyond any real history; keeps the row offset a small number

    def get(self, request: Request) -> Response:
        try:
            page = max(1, int(request.query_params.get("page", "1")))
            size = min(100, max(1, int(request.query_params.get("page_size", self.page_size))))
        except ValueError:
            return Response(
                envelope(self.api_id, {}, "INVALID_REQUEST", "page and page_size are numbers."), 400
            )
        if page > self.max_page:
            message = f"page is at most {self.max_page}."
            return Response(envelope(self.api_id, {}, "INVALID_REQUEST", message), 400)
        infos, count = api.list_processes(caller(request), self.kind, (page - 1) * size, size)
        result = {
            "userId": request.user.id,
            "count": count,
            "next": _page_url(request, page + 1) if page * size < count else None,
            "previous": _page_url(request, page - 1) if page > 1 else None,
            self.list_key: [
                {
                    "processId": info.process_id,
                    "uploadedDate": format_time(info.created),
                    "status": info.status,
                }
                for info in infos
            ],
        }
        return Response(envelope(self.api_id, result))


class _CancelView(BulkAPIView):
    kind: ProcessKind
    api_id: str

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(
                schema.ProcessEnvelope, "The process has ended (Canceled, or it had ended already)."
            ),
            202: OpenApiResponse(schema.ProcessEnvelope, "Canceled; items already running are finishing."),
            404: schema.EmptyEnvelope,
            **schema.AUTH_ERRORS,
        },
    )
    def post(self, request: Request, process_id: str) -> Response:
        try:
            info = api.cancel(caller(request), self.kind, process_id)
        except api.ProcessNotFound:
            message = f"Process Id {process_id} is not found in the system"
            return Response(envelope(self.api_id, {}, "PROCESS_NOT_FOUND", message), status=404)
        ended = info.finished_at is not None
        return Response(envelope(self.api_id, process_result(info, request)), status=200 if ended else 202)


def _page_url(request: Request, page: int) -> str:
    query = request.query_params.copy()
    query["page"] = str(page)
    return str(request.build_absolute_uri(f"{request.path}?{query.urlencode()}"))


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


# Upload -------------------------------------------------------------------------------------


class BulkUploadView(BulkAPIView):
    """
    Upload many files into courses from a CSV manifest and a ZIP.

    ``POST /api/courses/v0/content/bulk/upload`` (multipart/form-data): ``file`` = the CSV
    manifest, ``content`` = the ZIP; the mode (``upload``, ``publish`` or ``link``) in the
    ``operation-mode`` header or a ``mode`` field. 200 with ``result.processId``; 400 with
    every error in ``result.errors`` (nothing is stored).
    """

    api_id = "api.bulkupload.content"

    def max_body_bytes(self) -> int:
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


# Downloads from local storage ----------------------------------------------------------------


class FileDownloadView(APIView):
    """Serves a file of the local storage to whoever holds a valid, unexpired signed URL."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        responses={
            (200, "application/gzip"): OpenApiResponse(OpenApiTypes.BINARY, "An exported course."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, "A bulk upload report."),
            404: OpenApiResponse(schema.ErrorSerializer, "Unknown, tampered or expired link."),
        },
    )
    def get(self, request: Request, token: str) -> HttpResponseBase:
        try:
            name = storage.unsign_download_token(token)
        except signing.BadSignature:
            name = None
        store = storage.get_storage()
        if name is None or not store.exists(name):
            return api_error(404, "Unknown or expired download link.", "not_found")
        return FileResponse(store.open(name, "rb"), as_attachment=True, filename=name.rsplit("/", 1)[-1])
