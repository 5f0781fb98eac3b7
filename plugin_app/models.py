"""
A bulk process (one export request or one bulk upload) and its items (courses or manifest rows).

Counts are not stored on the process: they are counted from the items, so that what the status
API answers always agrees with the report.
"""

import enum
import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from plugin_app.data import ItemStatus, ProcessKind, ProcessStatus, UploadMode


def _choices(enum_cls: type[enum.Enum]) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum_cls]


if TYPE_CHECKING:
    _CharField = models.CharField[str, str]
else:
    _CharField = models.CharField


class CaseSensitiveCharField(_CharField):
    """A CharField that compares byte for byte on every database, for course keys (which are
    case-sensitive: ``course-v1:A+B+C`` and ``course-v1:a+b+c`` are two courses).

    SQLite and PostgreSQL compare exactly by default; MySQL's and MariaDB's default collations
    (``utf8mb4_general_ci``, ...) do not, so there the column gets a binary collation. Kept in the
    field, not in a MySQL-only RunSQL, so that the migration is the same on every database and a
    later AlterField of the column keeps it. ``utf8mb4_bin`` brings its character set along
    whatever the table's is.
    """

    def db_parameters(self, connection: BaseDatabaseWrapper) -> dict[str, Any]:
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params


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
    # Until when a runner holds the process as a whole (a sequential run, or its ending; see
    # ``lease``); None: nobody does.
    lease_expires = models.DateTimeField(null=True, blank=True)
    # The request's options (e.g. changed_only, dry_run, overwrite), for the kind's runner.
    options = models.JSONField(default=dict, blank=True)
    # When its owner asked to cancel it; it ends Canceled once its running items end.
    canceled_at = models.DateTimeField(null=True, blank=True)
    # Position of the last item sent to the workers: fan-out sends a window at a time, so that
    # the items of concurrent processes take turns in the queue.
    dispatched_up_to = models.IntegerField(default=-1)
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
    course_id = CaseSensitiveCharField(max_length=255)
    # The manifest row as sent (upload only), so the report can repeat it.
    data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=_choices(ItemStatus), default=ItemStatus.PENDING)
    error = models.TextField(blank=True)
    # What the item made: export {"object": storage name}; upload {"asset_url", "usage_key"}.
    result = models.JSONField(default=dict, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Until when the worker running the item holds it: after that another may take it over.
    lease_expires = models.DateTimeField(null=True, blank=True)
    # How many times the item was claimed; a runner holds it only while this is its claim's.
    attempts = models.PositiveIntegerField(default=0)
    # Export items: the id of the course's export task, as the export anchor answers and serves
    # (``upload_task_ids``, ``GET export/<course_id>/?task_id=``); None for other kinds.
    task_id = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["process", "position"]
        constraints = [
            models.UniqueConstraint(fields=["process", "position"], name="exportbulk_item_unique_position")
        ]
        indexes = [models.Index(fields=["process", "status"])]

    def __str__(self) -> str:
        return f"{self.process_id}#{self.position} {self.course_id} ({self.status})"


class BackupCourse(models.Model):
    """A course as backups know it: which run holds it now, and its last failure.

    The hold (``held_by`` until ``lease_expires``, renewed while held) keeps two runs from
    backing up or pruning the same course at once; a holder that died loses it when it expires.
    """

    course_id = CaseSensitiveCharField(max_length=255, unique=True)
    held_by = models.CharField(max_length=64, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    last_failure = models.DateTimeField(null=True, blank=True)
    last_failure_reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.course_id


class BackupVersion(models.Model):
    """One backup object of a course: recorded before its first byte is stored (``size`` None
    until its upload completed), marked deleted by the run whose retention removed it."""

    course = models.ForeignKey(BackupCourse, on_delete=models.CASCADE, related_name="versions")
    name = CaseSensitiveCharField(max_length=512, unique=True)  # storage name, below the key prefix
    created = models.DateTimeField()  # the UTC time in its name
    process_id = models.CharField(max_length=32)  # the run that wrote it
    fingerprint = models.CharField(max_length=128)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    deleted_by = models.CharField(max_length=32, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["course", "-created"]
        indexes = [models.Index(fields=["course", "-created"])]

    def __str__(self) -> str:
        return self.name
