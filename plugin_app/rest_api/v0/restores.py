"""
REST views of bulk restore (Studio): ``/api/courses/v0/restore/`` and its status APIs.

Studio owns ``/api/courses/v0/import/<course_id>/`` (one course); this is the bulk counterpart,
under a path of its own. A request that cannot start at all answers 400 or 413: a body larger
than ``EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES`` of tarballs and Django's limit on form fields is
refused from its Content-Length, before it is read (here and in the standalone server's ASGI
limit, which asks the view); tarballs that pass it are streamed to temporary files, never held
in memory. Everything else is reported per item in the process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from plugin_app import api
from plugin_app.data import ProcessKind
from plugin_app.rest_api.v0 import schema
from plugin_app.rest_api.v0.views import (
    BulkAPIView,
    _BoundedJSONParser,
    _CancelView,
    _list_schema,
    _StatusListView,
    _StatusView,
    api_error,
    caller,
)


class _Item(serializers.Serializer[Any]):
    # The metaclass pops declared fields, so this shadows no Field.source at run time.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="A bucket key, backup:latest, backup:<timestamp>, or a file name."
    )
    course_id = serializers.CharField(help_text="The target course.")


class RestoreRequestSerializer(serializers.Serializer[Any]):
    items = _Item(many=True)
    dry_run = serializers.BooleanField(default=False, help_text="Run every check and change nothing.")
    overwrite = serializers.BooleanField(default=False, help_text="Replace courses that exist.")


class RestoreUploadSerializer(serializers.Serializer[Any]):
    file = serializers.ListField(child=serializers.FileField(), help_text="Course tarballs (.tar.gz).")
    items = serializers.CharField(help_text="The items as a JSON list; a source may name an uploaded file.")
    dry_run = serializers.BooleanField(default=False)
    overwrite = serializers.BooleanField(default=False)


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def _too_large(size: int) -> RequestTooLarge:
    limit = settings.EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES
    return RequestTooLarge(f"The request is {size} bytes; at most {limit} bytes of tarballs may be uploaded.")


def _flag(data: Mapping[str, Any], name: str, multipart: bool) -> bool:
    value = data.get(name, False)
    if multipart and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if not isinstance(value, bool):
        raise api.RestoreRejected(f"{name}: true or false.")
    return value


class RestoreView(BulkAPIView):
    """
    Restore many courses from course tarballs, every check run before anything changes.

    ``POST /api/courses/v0/restore/`` with JSON ``{"items": [{"source", "course_id"}, ...],
    "dry_run": false, "overwrite": false}``, or ``multipart/form-data`` with ``file`` parts
    (``.tar.gz``) and the same fields (``items`` as JSON text), where a ``source`` may be the name
    of an uploaded file. 202 ``{"processId"}``; follow it at ``restore/status/<processId>``.
    """

    parser_classes = [_BoundedJSONParser, MultiPartParser]

    def max_body_bytes(self, content_type: str = "") -> int:
        fields = super().max_body_bytes(content_type)  # JSON is read into memory: Django's limit
        if not content_type.startswith("multipart/"):
            return fields
        # The tarballs at their limit, and the form's other fields at Django's, which its multipart
        # parser applies to them (file parts stream to temporary files, outside that limit).
        return int(settings.EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES + fields)

    @extend_schema(
        operation_id="bulk_restore",
        request={
            "application/json": RestoreRequestSerializer,
            "multipart/form-data": RestoreUploadSerializer,
        },
        responses={
            202: schema.ProcessIdSerializer,
            400: OpenApiResponse(
                schema.ErrorSerializer, "The request cannot start; the message names the field."
            ),
            413: schema.ErrorSerializer,
            415: schema.ErrorSerializer,
            429: OpenApiResponse(schema.ErrorSerializer, "Too many active processes; see Retry-After."),
            503: schema.ErrorSerializer,
            **schema.AUTH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, Mapping):
            return api_error(400, "The body must be a JSON object with items.", "invalid_request")
        multipart = request.content_type.startswith("multipart/")
        files = request.FILES.getlist("file") if multipart else []
        size = sum(file.size for file in files)
        if size > settings.EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES:  # a body sent without Content-Length
            raise _too_large(size)
        try:
            raw_items = data.get("items")
            if multipart:
                raw_items = json.loads(raw_items) if isinstance(raw_items, str) else None
            names = [file.name for file in files]
            if len(set(names)) != len(names):
                raise api.RestoreRejected("file: two uploaded files have the same name.")
            pairs = api.parse_restore_items(raw_items, set(names) if multipart else None)
            options = {name: _flag(data, name, multipart) for name in ("dry_run", "overwrite")}
        except ValueError:
            return api_error(400, "items: a JSON list of {source, course_id} objects.", "invalid_request")
        except api.RestoreRejected as exc:
            return api_error(400, str(exc), "invalid_request")
        process_id = api.create_restore(caller(request), pairs, [(f.name, f) for f in files], options)
        return Response({"processId": process_id}, status=status.HTTP_202_ACCEPTED)


class RestoreStatusView(_StatusView):
    """``GET /api/courses/v0/restore/status/<processId>``: one restore of the caller, every item with
    ``course_id``, ``source``, ``status`` (restored, would restore, failed), ``reason`` and ``findings``."""

    kind, api_id = ProcessKind.RESTORE, "api.bulkrestore.status"


@_list_schema("restores")
class RestoreStatusListView(_StatusListView):
    """``GET /api/courses/v0/restore/status/list``: the caller's restores, newest first."""

    kind, api_id, list_key = ProcessKind.RESTORE, "api.bulkrestore.status.list", "restores"


class RestoreCancelView(_CancelView):
    """``POST /api/courses/v0/restore/status/<processId>/cancel``: cancel a restore of the caller."""

    kind, api_id = ProcessKind.RESTORE, "api.bulkrestore.cancel"
