"""Admin pages where operators read bulk processes and their items (read-only: the APIs own them)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.timesince import timesince

from plugin_app.models import BackupCourse, BackupVersion, BulkItem, BulkProcess

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class BulkItemInline(admin.TabularInline):
    model = BulkItem
    fields = ("position", "course_id", "status", "error", "result", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(BulkProcess)
class BulkProcessAdmin(ReadOnlyAdmin):
    list_display = ("process_id", "kind", "mode", "owner", "status", "created", "finished_at")
    list_filter = ("kind", "status", "mode")
    search_fields = ("process_id", "owner__username", "items__course_id")
    date_hierarchy = "created"
    inlines = [BulkItemInline]


@admin.register(BulkItem)
class BulkItemAdmin(ReadOnlyAdmin):
    list_display = ("process", "position", "course_id", "status", "finished_at")
    list_filter = ("status", "process__kind")
    search_fields = ("course_id", "process__process_id")
    raw_id_fields = ("process",)


class BackupVersionInline(admin.TabularInline):
    model = BackupVersion
    fields = ("created", "name", "size", "sha256", "process_id", "deleted_by", "deleted_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class _Newest(TypedDict):
    """What ``BackupCourseAdmin.get_queryset`` adds: the newest stored backup's time and size."""

    last_created: datetime | None
    last_size: int | None


@admin.register(BackupCourse)
class BackupCourseAdmin(ReadOnlyAdmin):
    """Per course: its last backup (time, size, age) and whether a backup failed since."""

    list_display = ("course_id", "last_backup", "last_backup_size", "last_backup_age", "failed_since")
    search_fields = ("course_id",)
    readonly_fields = ("course_id", "held_by", "lease_expires", "last_failure", "last_failure_reason")
    inlines = [BackupVersionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WithAnnotations[BackupCourse, _Newest]]:
        newest = BackupVersion.objects.filter(
            course=OuterRef("pk"), size__isnull=False, deleted_at__isnull=True
        ).order_by("-created")
        courses: QuerySet[BackupCourse] = super().get_queryset(request)
        return courses.annotate(
            last_created=Subquery(newest.values("created")[:1]),
            last_size=Subquery(newest.values("size")[:1]),
        )

    @admin.display(description="last backup", ordering="last_created")
    def last_backup(self, course: WithAnnotations[BackupCourse, _Newest]) -> datetime | None:
        return course.last_created

    @admin.display(description="size")
    def last_backup_size(self, course: WithAnnotations[BackupCourse, _Newest]) -> str:
        return filesizeformat(course.last_size) if course.last_size is not None else "-"

    @admin.display(description="age")
    def last_backup_age(self, course: WithAnnotations[BackupCourse, _Newest]) -> str:
        return timesince(course.last_created, timezone.now()) if course.last_created else "never backed up"

    @admin.display(description="failed since", boolean=True)
    def failed_since(self, course: WithAnnotations[BackupCourse, _Newest]) -> bool:
        """Whether the last failure is newer than the last good backup (or there is none)."""
        return bool(
            course.last_failure and (not course.last_created or course.last_failure > course.last_created)
        )
