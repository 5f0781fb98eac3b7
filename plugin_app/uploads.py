"""
Bulk upload, as a kind of process: checking a request whole, then doing its rows in order.

Rows run in one task, in manifest order (a row may create the unit a later row fills); the
content ZIP is opened once per run, and the rows of one course are done in batches so that a
backend writes its course-level files (e.g. ``policies/assets.json``) once per batch. A row
counts as done only once its batch is durable.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import zipfile
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, BinaryIO

from opaque_keys.edx.keys import CourseKey

from plugin_app import access, kinds, lifecycle, storage
from plugin_app.backends import get_backend
from plugin_app.backends.base import CourseNotFound, CoursePermission, UnitNotFound
from plugin_app.content_zip import check_zip
from plugin_app.data import ItemOutcome, ItemStatus, ProcessKind, RowError, UploadMode
from plugin_app.manifest import ManifestRow, parse_manifest
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.upload import process_row

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

# The content ZIP of the run in progress (set by ``_session``).
_archive: ContextVar[zipfile.ZipFile] = ContextVar("exportbulk_upload_archive")


class UploadRejected(Exception):
    """A bulk upload request was refused; nothing was stored."""

    def __init__(self, code: str, message: str, errors: list[RowError]):
        super().__init__(message)
        self.code, self.message, self.errors = code, message, errors


def create_upload(user: User, manifest: bytes, content: BinaryIO, mode: UploadMode) -> str:
    """Check a bulk upload request whole, store its content, record its rows and queue it.

    Raises UploadRejected listing every error, lifecycle.QuotaExceeded or
    lifecycle.QueueUnavailable; then nothing was stored. Returns the process id.
    """
    lifecycle.check_quota(user)  # before storing anything
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
    content_name = storage.object_name("uploads", f"{process.process_id.hex}.zip")
    content.seek(0)
    with storage.open_writer(content_name, "application/zip") as out:
        shutil.copyfileobj(content, out, 1024 * 1024)
    items = [BulkItem(position=row.line, course_id=row.course_id, data=row.as_data()) for row in parsed.rows]
    try:
        return lifecycle.start(
            user,
            ProcessKind.UPLOAD,
            items,
            process_id=process.process_id,
            mode=mode,
            content_name=content_name,
        )
    except BaseException:
        storage.get_storage().delete(content_name)  # the lifecycle removes it once the process exists
        raise


def _check_course_access(user: User, course_lines: dict[str, list[int]]) -> list[RowError]:
    backend = get_backend()
    refusals: dict[str, str | None] = {}
    for course_id in course_lines:
        course_key = CourseKey.from_string(course_id)
        if not backend.has_write_access(user, course_key, CoursePermission.UPLOAD):
            refusals[course_id] = f"You do not have Studio write access to {course_id}."
        elif not backend.course_exists(course_key):
            refusals[course_id] = f"Course {course_id} not found."
    return [
        RowError(line, "course_id", refusal)
        for course_id, refusal in refusals.items()
        if refusal
        for line in course_lines[course_id]
    ]


@contextlib.contextmanager
def _session(process: BulkProcess) -> Iterator[None]:
    """The process's content ZIP, open for the whole run."""
    with storage.get_storage().open(process.content_name, "rb") as stream, zipfile.ZipFile(stream) as archive:
        token = _archive.set(archive)
        try:
            yield
        finally:
            _archive.reset(token)


def _batch(process: BulkProcess, course_id: str) -> contextlib.AbstractContextManager[object]:
    return get_backend().batch(CourseKey.from_string(course_id))


def upload_row(process: BulkProcess, item: BulkItem) -> ItemOutcome:
    """Do one manifest row; a row whose content or target is wrong fails with the reason."""
    row = ManifestRow.from_data(item.position, item.course_id, item.data)
    try:
        result = process_row(
            get_backend(),
            _archive.get(),
            row,
            UploadMode(process.mode),
            process.process_id.hex,
            process.owner,
        )
    except (CourseNotFound, UnitNotFound, ValueError, zipfile.BadZipFile) as exc:  # e.g. a corrupt entry
        return ItemOutcome(ItemStatus.FAILED, error=str(exc))
    return ItemOutcome(ItemStatus.SUCCESS, result)


SPEC = kinds.KindSpec(
    ProcessKind.UPLOAD,
    upload_row,
    fan_out=False,
    session=_session,
    batch=_batch,
    refusal=access.write_refusal,
)
