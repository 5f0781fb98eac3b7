"""
Shapes of the answers, for the OpenAPI schema only (drf-spectacular, as edx-platform uses).

The views build their answers as plain dicts; these serializers describe them so that the
schema is exact enough for schemathesis to check every answer against it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from plugin_app.data import ProcessKind, ProcessStatus


class ErrorSerializer(serializers.Serializer[Any]):
    """The platform's error body (``DeveloperErrorViewMixin``)."""

    developer_message = serializers.CharField()
    error_code = serializers.CharField()


class ExportResultSerializer(serializers.Serializer[Any]):
    processId = serializers.CharField(help_text="the process, for its report")  # noqa: N815
    successful_uploads = serializers.DictField(child=serializers.URLField(), help_text="course id: URL")
    failed_uploads = serializers.DictField(child=serializers.CharField(), help_text="course id: reason")
    upload_urls = serializers.DictField(
        child=serializers.CharField(), help_text="course id: the object's plain URL (bucket, then key as is)"
    )
    upload_task_ids = serializers.DictField(child=serializers.UUIDField(), help_text="course id: task id")
    upload_keys = serializers.DictField(child=serializers.CharField(), help_text="course id: bucket key")
    pending_uploads = serializers.ListField(
        child=serializers.CharField(), help_text="courses still exporting when the request stopped waiting"
    )


class ExportTaskStateSerializer(serializers.Serializer[Any]):
    state = serializers.ChoiceField(["Pending", "In Progress", "Succeeded", "Failed", "Canceled", "Retrying"])
    error = serializers.CharField(required=False)
    upload_url = serializers.CharField(required=False)
    upload_key = serializers.CharField(required=False)


class NotFoundSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()


class _StaticAssetsSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    latest_upload = serializers.DateTimeField(allow_null=True)
    latest_asset = serializers.CharField(allow_null=True)


class _TranscriptsSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    latest_modified = serializers.DateTimeField(allow_null=True)


class _CourseVersionsSerializer(serializers.Serializer[Any]):
    published_version = serializers.CharField()
    static_assets = _StaticAssetsSerializer()
    transcripts = _TranscriptsSerializer()


class ContentVersionsSerializer(serializers.Serializer[Any]):
    versions = serializers.DictField(child=_CourseVersionsSerializer(), help_text="course id: versions")
    missing = serializers.ListField(child=serializers.CharField(), help_text="ids naming no course, in order")


class ProcessIdSerializer(serializers.Serializer[Any]):
    processId = serializers.CharField()  # noqa: N815 (the Sunbird API's name)


class ExportAcceptedSerializer(ProcessIdSerializer):
    upload_urls = serializers.DictField(child=serializers.CharField())
    upload_task_ids = serializers.DictField(child=serializers.UUIDField())
    upload_keys = serializers.DictField(child=serializers.CharField())


class _ParamsSerializer(serializers.Serializer[Any]):
    resmsgid = serializers.UUIDField()
    msgid = serializers.UUIDField()
    err = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    errmsg = serializers.CharField(allow_null=True)


class _EmptySerializer(serializers.Serializer[Any]):
    pass


class _RowErrorSerializer(serializers.Serializer[Any]):
    row = serializers.IntegerField(allow_null=True, help_text="Spreadsheet line (header = 1); null: request")
    column = serializers.CharField()
    message = serializers.CharField()


class _RowErrorsSerializer(serializers.Serializer[Any]):
    # The API's field is named errors; this serializer is never validated, so hiding .errors is harmless.
    errors = _RowErrorSerializer(many=True)  # type: ignore[assignment]


class _ProcessSerializer(serializers.Serializer[Any]):
    processId = serializers.CharField()  # noqa: N815
    status = serializers.ChoiceField(choices=[s.value for s in ProcessStatus])
    totalCount = serializers.IntegerField()  # noqa: N815
    successCount = serializers.IntegerField()  # noqa: N815
    failedCount = serializers.IntegerField()  # noqa: N815
    canceledCount = serializers.IntegerField(help_text="Items canceled before they ran")  # noqa: N815
    startTime = serializers.CharField()  # noqa: N815
    endTime = serializers.CharField(required=False)  # noqa: N815
    report = serializers.URLField(required=False, allow_null=True, help_text="CSV report, once finished")
    reportMissing = serializers.CharField(  # noqa: N815
        required=False,
        help_text="Ended without a report: why (the storage refused it, or access was withdrawn)",
    )
    error = serializers.CharField(required=False, help_text="Why the process failed as a whole")
    successful_uploads = serializers.DictField(child=serializers.URLField(), required=False)
    failed_uploads = serializers.DictField(child=serializers.CharField(), required=False)
    items = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="Every item, for kinds that show them"
    )
    manifest = serializers.URLField(required=False, help_text="Backups, once ended: the run manifest")


class StorageCheckSerializer(serializers.Serializer[Any]):
    storage = serializers.CharField(help_text="bucket NAME, or folder PATH (local storage)")


class _ProcessSummarySerializer(serializers.Serializer[Any]):
    processId = serializers.CharField()  # noqa: N815
    uploadedDate = serializers.CharField()  # noqa: N815
    status = serializers.ChoiceField(choices=[s.value for s in ProcessStatus])


class _AnyProcessSerializer(_ProcessSerializer):
    kind = serializers.ChoiceField(choices=[k.value for k in ProcessKind])


def _page_serializer(name: str, list_key: str) -> type[serializers.Serializer[Any]]:
    """A page of processes, listed under ``list_key`` (``exports``, ``uploads``, ...)."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "userId": serializers.IntegerField(),
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            list_key: _ProcessSummarySerializer(many=True),
        },
    )


def _envelope(name: str, result: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[Any]]:
    """The Sunbird envelope around one kind of ``result``."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "id": serializers.CharField(),
            "ver": serializers.CharField(),
            "ts": serializers.CharField(),
            "params": _ParamsSerializer(),
            "responseCode": serializers.CharField(),
            "result": result(),
        },
    )


ProcessEnvelope = _envelope("ProcessEnvelope", _ProcessSerializer)
AnyProcessEnvelope = _envelope("AnyProcessEnvelope", _AnyProcessSerializer)


def page_envelope(list_key: str) -> type[serializers.Serializer[Any]]:
    """The envelope of a status list whose processes are under ``list_key``."""
    title = list_key.capitalize()
    return _envelope(f"{title}PageEnvelope", _page_serializer(f"{title}Page", list_key))


RowErrorsEnvelope = _envelope("RowErrorsEnvelope", _RowErrorsSerializer)
EmptyEnvelope = _envelope("EmptyEnvelope", _EmptySerializer)
UploadQueuedEnvelope = _envelope("UploadQueuedEnvelope", ProcessIdSerializer)

EXPORT_FAILURE = PolymorphicProxySerializer(
    component_name="ExportFailure",
    serializers=[ExportResultSerializer, ErrorSerializer],
    resource_type_field_name=None,
)

# Answers every authenticated view may give besides its own.
AUTH_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, "No valid credentials."),
    403: OpenApiResponse(ErrorSerializer, "Credentials valid, access refused."),
}


class JwtAuthenticationScheme(OpenApiAuthenticationExtension):
    """The platform's JWT header (``Authorization: JWT <token>``), as drf-spectacular should show it."""

    target_class = "edx_rest_framework_extensions.auth.jwt.authentication.JwtAuthentication"
    match_subclasses = True  # plugin_app.authentication.ExistingUserJwtAuthentication too
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "JWT <token> (an access token with token_type=jwt).",
        }
