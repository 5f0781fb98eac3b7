"""
What every REST view of the app shares (Studio): authentication, request limits, errors, and the
status, list and cancel views each process kind specializes. The kinds' own views are in
``exports``, ``uploads``, ``backups`` and ``restores``; they parse and answer, ``api`` does the work.

Authentication is the platform's (JWT, OAuth2 bearer, session), configurable through
``EXPORTBULK_AUTHENTICATION_CLASSES`` so the standalone project can bring its own bearer class.
Errors outside the status envelope follow the platform: ``developer_message`` and ``error_code``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import FileResponse, Http404, HttpResponseBase
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from plugin_app import access, api, backups, storage
from plugin_app.data import ProcessKind
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.envelope import envelope, format_time, process_result
from plugin_app.rest_api.v0.serializers import CourseSelectionSerializer

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def caller(request: Request) -> User:
    """The user a request is made by: authenticated, since every bulk view's permissions require it."""
    return cast("User", request.user)


def api_error(status_code: int, developer_message: str, error_code: str) -> Response:
    """An error answer in the platform's shape (``DeveloperErrorViewMixin.api_error``)."""
    return Response({"developer_message": developer_message, "error_code": error_code}, status=status_code)


def selected_courses(
    request: Request,
    serializer_class: type[CourseSelectionSerializer],
    verb: str,
    authorable: Callable[[User, str | None], list[str]] = api.authorable_courses,
) -> tuple[dict[str, Any], list[str]] | Response:
    """The validated body of an export or backup request and the courses it selects (the listed
    ones, or those of ``org`` / ``all`` the caller may author: ``authorable``); or the 400 that
    refuses it."""
    serializer = serializer_class(data=request.data)
    if not serializer.is_valid():
        return api_error(400, _flatten(serializer.errors), "invalid_request")
    body: dict[str, Any] = serializer.validated_data
    course_ids = body.get("courses") or authorable(caller(request), body.get("org"))
    if not course_ids:
        message = f"No course to {verb}: you may author no course of that selection."
        return api_error(400, message, "no_courses")
    return body, course_ids


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


class _BoundedJSONParser(JSONParser):
    """DRF's JSON parser; JSON nested too deep for the decoder is a 400, not a 500."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None


class BulkAPIView(APIView):
    """Authenticated as the platform's own APIs are; every error as JSON ``developer_message``."""

    permission_classes = [IsAuthenticated, IsActiveUser]
    # DRF's defaults, with JSON nested too deep a 400; views that take less narrow them.
    parser_classes = [_BoundedJSONParser, FormParser, MultiPartParser]

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [import_string(path)() for path in settings.EXPORTBULK_AUTHENTICATION_CLASSES]

    def max_body_bytes(self, content_type: str = "") -> int:
        """The largest body of that type this endpoint reads; Django's own limit for bodies read
        into memory."""
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**63

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication, which may parse a form (CSRF): a body too large is never read.
        _check_declared_length(request, self.max_body_bytes(request.content_type))
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, api.QuotaExceeded):
            response = api_error(429, str(exc), "too_many_active_processes")
            response["Retry-After"] = str(exc.retry_after)
            return response
        if isinstance(exc, api.QueueUnavailable):
            return api_error(503, str(exc), "queue_down")
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
        try:
            info = api.get_process(caller(request), None, process_id)
        except api.ProcessNotFound:
            message = f"Process Id {process_id} is not found in the system"
            return Response(envelope(self.api_id, {}, "PROCESS_NOT_FOUND", message), status=404)
        info = access.as_allowed_now(caller(request), info)
        result = {**process_result(info, request), "kind": info.kind}
        return Response(envelope(self.api_id, with_manifest(result, info.kind, request)))


def with_manifest(result: dict[str, Any], kind: str, request: Request) -> dict[str, Any]:
    """A backup run's result with ``manifest``, its manifest's URL, once it has ended (withheld,
    as the report is, while a course is no longer the caller's)."""
    if kind == ProcessKind.BACKUP and result.get("report"):
        name = backups.manifest_key(result["processId"])
        result["manifest"] = request.build_absolute_uri(storage.download_url(name))
    return result


class StorageCheckView(BulkAPIView):
    """``GET /api/courses/v0/storage/check``: write, read back and delete a small object.

    For ``check``: a missing bucket, or one that refuses the app's writes, shows here, named,
    rather than as every course of the next export failing. Staff only: it names the bucket and
    writes to it, which no course author needs.
    """

    permission_classes = [*BulkAPIView.permission_classes, IsAdminUser]

    @extend_schema(
        responses={200: schema.StorageCheckSerializer, 503: schema.ErrorSerializer, **schema.AUTH_ERRORS},
    )
    def get(self, request: Request) -> Response:
        problem = storage.check_writable()
        if problem:
            return api_error(503, f"The storage does not work: {problem}.", "storage_unavailable")
        return Response({"storage": storage.where()})


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
