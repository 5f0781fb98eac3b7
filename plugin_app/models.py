"""
A bulk process (one export request or one bulk upload) and its items (courses or manifest rows).

Counts are not stored on the process: they are counted from the items, so that what the status
API answers always agrees with the report.
"""

import enum
import uuid

from django.conf import settings
from django.db import models

from plugin_app.data import ItemStatus, ProcessKind, ProcessStatus, UploadMode


def _choices(enum_cls: type[enum.Enum]) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum_cls]


class BulkProcess(models.Model):
    """One request for bulk work, owned by the user who made it."""

    process_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=_choices(ProcessKind))
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=_choices(ProcessStatus), default=ProcessStatus.QUEUED)
    mode = models.CharField(max_length=16, choices=_choices(UploadMode), blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Storage names (in the exportbulk storage) of the uploaded content and of the report.
    content_name = models.CharField(max_length=512, blank=True)
    report_name = models.CharField(max_length=512, blank=True)
    # Until when the runner of the process holds it (see ``lease``); None: nobody runs it.
    lease_expires = models.DateTimeField(null=True, blank=True)
    # Why the process as a whole failed (status Failed); row errors live on the items.
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "kind", "-created"])]
        verbose_name_plural = "bulk processes"

    def __str__(self) -> str:
        return f"{self.kind} {self.process_id.hex} ({self.status})"


class BulkItem(models.Model):
    """One course of an export, or one row of a bulk upload manifest, with its outcome."""

    process = models.ForeignKey(BulkProcess, on_delete=models.CASCADE, related_name="items")
    # Export: position of the course in the request; upload: the row's spreadsheet line.
    position = models.PositiveIntegerField()
    course_id = models.CharField(max_length=255)
    # The manifest row as sent (upload only), so the report can repeat it.
    data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=_choices(ItemStatus), default=ItemStatus.PENDING)
    error = models.TextField(blank=True)
    # What the item made: export {"object": storage name}; upload {"asset_url", "usage_key"}.
    result = models.JSONField(default=dict, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["process", "position"]
        constraints = [
            models.UniqueConstraint(fields=["process", "position"], name="exportbulk_item_unique_position")
        ]
        indexes = [models.Index(fields=["process", "status"])]

    def __str__(self) -> str:
        return f"{self.process_id}#{self.position} {self.course_id} ({self.status})"
