"""Validation of the bulk export and backup request bodies."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from rest_framework import serializers

from plugin_app.content_versions import MAX_COURSES as MAX_VERSION_COURSES
from plugin_app.data import UploadMode


class _StrictCharField(serializers.CharField):
    """A string, and only a string (DRF's CharField would turn 12 into "12")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Not a string.")
        return super().to_internal_value(data)


class _BoundedListField(serializers.ListField):
    """A list whose length is checked before any of its items is (a huge list costs nothing)."""

    def __init__(self, *, max_length_setting: str, noun: str, **kwargs: Any) -> None:
        self.max_length_setting, self.noun = max_length_setting, noun
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[Any]:
        limit = getattr(settings, self.max_length_setting)
        if isinstance(data, list) and len(data) > limit:
            raise serializers.ValidationError(
                f"{len(data)} {self.noun} requested; at most {limit} per request."
            )
        return super().to_internal_value(data)


class CourseSelectionSerializer(serializers.Serializer[dict[str, Any]]):
    """``{"courses": [...]}``, ``{"org": "X"}`` or ``{"all": true}``: which courses a request is for."""

    courses = _BoundedListField(
        max_length_setting="EXPORTBULK_MAX_COURSES_PER_REQUEST",
        noun="courses",
        child=_StrictCharField(max_length=255),
        required=False,
        allow_empty=False,
    )
    org = _StrictCharField(required=False, max_length=255)
    all = serializers.BooleanField(required=False, default=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        validated: dict[str, Any] = super().to_internal_value(data)
        return validated

    def validate_courses(self, courses: list[str]) -> list[str]:
        duplicates = sorted(c for c, count in Counter(courses).items() if count > 1)
        if duplicates:
            raise serializers.ValidationError(f"Duplicate course ids: {', '.join(duplicates)}.")
        return courses

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        chosen = [name for name in ("courses", "org") if name in attrs] + (
            ["all"] if attrs.get("all") else []
        )
        if len(chosen) != 1:
            raise serializers.ValidationError(
                'Give exactly one of "courses" (a list of course ids), "org" or "all": true.'
            )
        return attrs


class ExportRequestSerializer(CourseSelectionSerializer):
    """The courses to export, with an optional ``"async"``."""

    # Sent as "async" (a Python keyword, hence the rename in get_fields).
    run_async = serializers.BooleanField(required=False, default=False, source="run_async")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["async"] = fields.pop("run_async")
        return fields


class ContentVersionsRequestSerializer(serializers.Serializer[dict[str, Any]]):
    """``{"courses": [ids]}``, 1 to 200 of them (the export anchor's limit)."""

    courses = serializers.ListField(
        child=_StrictCharField(max_length=255), allow_empty=False, max_length=MAX_VERSION_COURSES
    )


class BackupRequestSerializer(CourseSelectionSerializer):
    """The courses to back up; ``changed_only`` (default true) skips those whose newest backup is current."""

    changed_only = serializers.BooleanField(required=False, default=True)


class BulkUploadRequestSerializer(serializers.Serializer[dict[str, Any]]):
    """The multipart form of a bulk upload; documents it (the view reads the form itself)."""

    file = serializers.FileField(help_text="The CSV manifest: course_id, file, and optional columns.")
    content = serializers.FileField(help_text="The ZIP holding every file the manifest names.")
    mode = serializers.ChoiceField(
        choices=[m.value for m in UploadMode], required=False, help_text="When no operation-mode header."
    )
