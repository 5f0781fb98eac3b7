"""Admin pages where operators read bulk processes and their items (read-only: the APIs own them)."""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from plugin_app.models import BulkItem, BulkProcess


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
