"""
The Python API of bulk export and bulk upload: what views, tasks and other apps call.

Processes and items are stored as soon as a request is accepted, so a process can be
queried from the moment its id is returned, and each item's outcome is saved as it ends,
so that a restarted task picks up where the last one stopped.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey

from plugin_app import storage
from plugin_app.backends import get_backend
from plugin_app.backends.base import CourseNotFound, UnitNotFound
from plugin_app.content_zip import check_zip
from plugin_app.data import ItemStatus, ProcessInfo, ProcessKind, ProcessStatus, RowError, UploadMode
from plugin_app.export import export_many
from plugin_app.lease import leased
from plugin_app.manifest import ManifestRow, parse_manifest
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.report import write_report
from plugin_app.upload import process_row

log = logging.getLogger(__name__)

# Errors worth retrying the whole task for: the row itself may well be fine.
TRANSIENT_ERRORS = (DatabaseError, InterfaceError, BotoCoreError, ClientError, ConnectionError)
# What a storage that refuses a write raises (S3 or the local disk).
_STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)

PERMISSION_DENIED = "Permission denied: you do not have Studio write access to this course."


class ProcessNotFound(Exception):
    """No process with that id belongs to the user (unknown and foreign ids look the same)."""


class UploadRejected(Exception):
    """A bulk upload request was refused; nothing was stored."""

    def __init__(self, code: str, message: str, errors: list[RowError]):
        super().__init__(message)
        self.code, self.message, self.errors = code, message, errors


# Export -------------------------------------------------------------------------------------


def authorable_courses(user, org: str | None = None) -> list[str]:
    """Ids of the courses the user may author, of one organization or all."""
    backend = get_backend()
    return [
        summary.course_id
        for summary in backend.list_courses()
        # Case-insensitive, as Studio's org filter (``CourseOverview.get_all_courses(orgs=...)``).
        if (org is None or summary.org.lower() == org.lower())
        and backend.has_write_access(user, CourseKey.from_string(summary.course_id))
    ]


def _export_item(user, position: int, course_id: str, backend) -> BulkItem:
    """The item of one requested course; refused courses fail at once, with their reason."""
    item = BulkItem(position=position, course_id=course_id)
    try:
        course_key = CourseKey.from_string(course_id)
    except InvalidKeyError:
        item.status, item.error = ItemStatus.FAILED, "Invalid course key."
        return item
    # Permission first: a stranger learns nothing of whether the course exists.
    if not backend.has_write_access(user, course_key):
        item.status, item.error = ItemStatus.FAILED, PERMISSION_DENIED
    elif not backend.course_exists(course_key):
        item.status, item.error = ItemStatus.FAILED, "Course not found."
    return item


def create_export(user, course_ids: list[str]) -> str:
    """Record an export of the courses for the user; return its process id."""
    backend = get_backend()
    items = [
        _export_item(user, position, course_id, backend) for position, course_id in enumerate(course_ids)
    ]
    now = timezone.now()
    for item in items:
        if item.status == ItemStatus.FAILED:
            item.finished_at = now
    with transaction.atomic():
        process = BulkProcess.objects.create(kind=ProcessKind.EXPORT, owner=user)
        for item in items:
            item.process = process
        BulkItem.objects.bulk_create(items)
    return process.process_id.hex


def run_export(process_id: str) -> None:
    """Export every pending course of the process, concurrently; then write its report.

    Raises ProcessBusy when another runner holds the process.
    """
    with leased(process_id) as process:
        if process is None:
            return
        pending = {
            CourseKey.from_string(item.course_id): item
            for item in process.items.filter(status=ItemStatus.PENDING)
        }

        def on_done(course_key: CourseKey, name: str | None, error: str | None) -> None:
            item = pending[course_key]
            item.status = ItemStatus.SUCCESS if name else ItemStatus.FAILED
            item.result = {"object": name} if name else {}
            item.error = error or ""
            item.finished_at = timezone.now()
            item.save(update_fields=["status", "result", "error", "finished_at"])

        export_many(pending, on_done, process.process_id.hex)
        _finish(process)


# Upload -------------------------------------------------------------------------------------


def create_upload(user, manifest: bytes, content: BinaryIO, mode: UploadMode) -> str:
    """Check a bulk upload request whole, store its content and record its rows.

    Raises UploadRejected listing every error; then nothing was stored. Returns the process id.
    """
    zip_names, errors = check_zip(content)
    archive = zipfile.ZipFile(content) if not errors else None
    parsed, row_errors = parse_manifest(manifest, mode, zip_names, archive)
    errors += row_errors + _check_course_access(user, parsed.course_lines)
    errors.sort(key=lambda error: error.row or 0)  # every problem in one answer, in manifest order
    if errors:
        raise UploadRejected(
            "INVALID_MANIFEST", f"The request has {len(errors)} error(s); nothing was uploaded.", errors
        )

    process = BulkProcess(kind=ProcessKind.UPLOAD, owner=user, mode=mode)
    process.content_name = storage.object_name("uploads", f"{process.process_id.hex}.zip")
    content.seek(0)
    with storage.open_writer(process.content_name, "application/zip") as out:
        shutil.copyfileobj(content, out, 1024 * 1024)
    try:
        with transaction.atomic():
            process.save()
            BulkItem.objects.bulk_create(
                BulkItem(process=process, position=row.line, course_id=row.course_id, data=row.as_data())
                for row in parsed.rows
            )
    except BaseException:
        storage.get_storage().delete(process.content_name)
        raise
    return process.process_id.hex


def _check_course_access(user, course_lines: dict[str, list[int]]) -> list[RowError]:
    backend = get_backend()
    refusals: dict[str, str | None] = {}
    for course_id in course_lines:
        course_key = CourseKey.from_string(course_id)
        if not backend.has_write_access(user, course_key):
            refusals[course_id] = f"You do not have Studio write access to {course_id}."
        elif not backend.course_exists(course_key):
            refusals[course_id] = f"Course {course_id} not found."
    return [
        RowError(line, "course_id", refusal)
        for course_id, refusal in refusals.items()
        if refusal
        for line in course_lines[course_id]
    ]


def run_upload(process_id: str) -> None:
    """Do every pending row of the process, saving each outcome; then write the report.

    Raises ProcessBusy when another runner holds the process.
    """
    with leased(process_id) as process:
        if process is None:
            return
        _run_rows(process)
        # Before the process shows as Completed, so that Completed means nothing is left to do.
        _remove_content(process)
        _finish(process)


def _run_rows(process: BulkProcess) -> None:
    backend = get_backend()
    process_id = process.process_id.hex
    pending = list(process.items.filter(status=ItemStatus.PENDING).order_by("position"))
    if not pending:  # a run that ended after removing the content
        return
    with storage.get_storage().open(process.content_name, "rb") as stream, zipfile.ZipFile(stream) as archive:
        for item in pending:
            row = ManifestRow.from_data(item.position, item.course_id, item.data)
            try:
                item.result = process_row(
                    backend, archive, row, UploadMode(process.mode), process_id, process.owner
                )
                item.status = ItemStatus.SUCCESS
            except TRANSIENT_ERRORS:
                raise
            except (CourseNotFound, UnitNotFound, ValueError, zipfile.BadZipFile) as exc:  # a corrupt entry
                item.status, item.error = ItemStatus.FAILED, str(exc)
            except Exception:  # pylint: disable=broad-except
                log.exception("Row %s of bulk upload %s failed", item.position, process_id)
                item.status, item.error = ItemStatus.FAILED, "Unexpected error; see the server logs."
            item.finished_at = timezone.now()
            item.save(update_fields=["status", "result", "error", "finished_at"])


# Both ---------------------------------------------------------------------------------------


def _finish(process: BulkProcess) -> None:
    # The work is done and its outcome is in the database (the status API shows it): an
    # unreachable bucket must not leave the process unfinished.
    if not _store_report(process):
        process.error = "The report could not be stored; the counts above are complete."
    process.status = ProcessStatus.COMPLETED
    process.finished_at = timezone.now()
    process.save(update_fields=["report_name", "error", "status", "finished_at"])


def _store_report(process: BulkProcess) -> bool:
    """Store the report of the process (``report_name``); False, logged, if the storage refuses."""
    try:
        process.report_name = write_report(process)
    except _STORAGE_ERRORS as exc:
        log.warning("Could not store the report of bulk process %s: %r", process.process_id.hex, exc)
        return False
    return True


def _remove_content(process: BulkProcess) -> None:
    """Delete the uploaded content of the process, if it has any."""
    if process.content_name:
        storage.get_storage().delete(process.content_name)


def fail_process(process_id: str, reason: str) -> None:
    """Mark a process that could not run as Failed, with a reason safe to show.

    The rows done so far are reported and the uploaded content is removed, as far as the
    storage allows: it may be what failed.
    """
    failed = (
        BulkProcess.objects.filter(process_id=process_id)
        .exclude(status=ProcessStatus.COMPLETED)
        .update(status=ProcessStatus.FAILED, error=reason, finished_at=timezone.now())
    )
    if not failed:
        return
    process = BulkProcess.objects.get(process_id=process_id)
    try:
        if _store_report(process):
            process.save(update_fields=["report_name"])
        _remove_content(process)
    except TRANSIENT_ERRORS as exc:
        log.warning("Could not clean up after failed bulk process %s: %r", process_id, exc)


def discard_process(process_id: str) -> None:
    """Remove a process that could not be queued, and its stored content."""
    process = BulkProcess.objects.filter(process_id=process_id).first()
    if process:
        _remove_content(process)
        process.delete()


def _with_counts(processes):
    return processes.annotate(
        total_count=Count("items"),
        success_count=Count("items", filter=Q(items__status=ItemStatus.SUCCESS)),
        failed_count=Count("items", filter=Q(items__status=ItemStatus.FAILED)),
    )


def _info(process: BulkProcess, detail: bool) -> ProcessInfo:
    """The process as the APIs show it; ``detail`` adds download URLs (presigned: worth skipping in lists)."""
    successful = failed = None
    ended = process.status in (ProcessStatus.COMPLETED, ProcessStatus.FAILED)
    if detail and process.kind == ProcessKind.EXPORT and ended:
        items = process.items.exclude(status=ItemStatus.PENDING)
        successful = {
            i.course_id: storage.download_url(i.result["object"])
            for i in items
            if i.status == ItemStatus.SUCCESS
        }
        failed = {i.course_id: i.error for i in items if i.status == ItemStatus.FAILED}
    return ProcessInfo(
        process_id=process.process_id.hex,
        kind=process.kind,
        owner_id=process.owner_id,
        status=process.status,
        mode=process.mode,
        created=process.created,
        started_at=process.started_at,
        finished_at=process.finished_at,
        total_count=process.total_count,
        success_count=process.success_count,
        failed_count=process.failed_count,
        error=process.error,
        report_url=storage.download_url(process.report_name) if detail and process.report_name else None,
        successful_uploads=successful,
        failed_uploads=failed,
    )


def get_process(user, kind: ProcessKind, process_id: str) -> ProcessInfo:
    """The user's process of that kind; ProcessNotFound for unknown ids and other users' ids."""
    try:
        process = _with_counts(BulkProcess.objects.filter(kind=kind, owner=user)).get(process_id=process_id)
    except (BulkProcess.DoesNotExist, ValidationError):
        raise ProcessNotFound(process_id) from None
    return _info(process, detail=True)


def list_processes(user, kind: ProcessKind, offset: int, limit: int) -> tuple[list[ProcessInfo], int]:
    """A page of the user's processes of that kind, newest first, and how many there are."""
    processes = BulkProcess.objects.filter(owner=user, kind=kind).order_by("-created", "-id")
    page = _with_counts(processes)[offset : offset + limit]
    return [_info(p, detail=False) for p in page], processes.count()
