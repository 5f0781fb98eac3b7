"""
Bulk export, as a kind of process: which courses a request exports, and exporting one of them.

Courses the requester may not author, or that do not exist, are refused at request time (their
items are recorded FAILED with the reason); the others are exported by the lifecycle, one
Celery task per course.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey

from plugin_app import access, kinds, lifecycle, runners, storage
from plugin_app.backends import get_backend
from plugin_app.backends.base import CoursePermission
from plugin_app.data import ItemOutcome, ItemStatus, ProcessKind
from plugin_app.export import ExportError, export_course
from plugin_app.models import BulkItem, BulkProcess

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from plugin_app.backends.base import CourseBackend

PERMISSION_DENIED = "Permission denied: you do not have Studio write access to this course."
CANCELED = "Canceled before the export was stored."


def authorable_courses(user: User, org: str | None = None) -> list[str]:
    """Ids of the courses the user may author, of one organization or all."""
    backend = get_backend()
    return [
        summary.course_id
        for summary in backend.list_courses()
        # Case-insensitive, as Studio's org filter (``CourseOverview.get_all_courses(orgs=...)``).
        if (org is None or summary.org.lower() == org.lower())
        and backend.has_write_access(user, CourseKey.from_string(summary.course_id), CoursePermission.EXPORT)
    ]


def requested_item(user: User, position: int, course_id: str, backend: CourseBackend) -> BulkItem:
    """The item of one requested course (export, backup); refused courses fail at once, with their reason."""
    item = BulkItem(position=position, course_id=course_id)
    try:
        course_key = CourseKey.from_string(course_id)
    except InvalidKeyError:
        item.status, item.error = ItemStatus.FAILED, "Invalid course key."
        return item
    # Permission first: a stranger learns nothing of whether the course exists.
    if not backend.has_write_access(user, course_key, CoursePermission.EXPORT):
        item.status, item.error = ItemStatus.FAILED, PERMISSION_DENIED
    elif not backend.course_exists(course_key):
        item.status, item.error = ItemStatus.FAILED, "Course not found."
    return item


def create_export(user: User, course_ids: list[str], *, send: bool = True) -> str:
    """Record an export of the courses for the user and (``send``) queue it; return its process id.

    Raises lifecycle.QuotaExceeded or lifecycle.QueueUnavailable; then nothing is recorded.
    """
    backend = get_backend()
    items = [
        requested_item(user, position, course_id, backend) for position, course_id in enumerate(course_ids)
    ]
    for item in items:
        if item.status == ItemStatus.PENDING:  # a course that will be exported: its task's id
            item.task_id = uuid.uuid4()
    return lifecycle.start(user, ProcessKind.EXPORT, items, send=send)


def export_item(process: BulkProcess, item: BulkItem) -> ItemOutcome:
    """Export one course of the process; a cancel stops it between parts, leaving no object."""
    try:
        course_key = CourseKey.from_string(item.course_id)
        name = export_course(course_key, process.process_id.hex, runners.cancel_check(process))
    except ExportError as exc:
        return ItemOutcome(ItemStatus.FAILED, error=str(exc))
    except storage.Stopped:
        return ItemOutcome(ItemStatus.CANCELED, error=CANCELED)
    return ItemOutcome(ItemStatus.SUCCESS, {"object": name})


SPEC = kinds.KindSpec(ProcessKind.EXPORT, export_item, refusal=access.write_refusal)
