"""
An export as the export anchor (mitodl's ``ol_openedx_course_export``) shows it: one task per
course, with an id, a state in django-user-tasks' names, and the object it writes.

Each task is an item of the export process (``BulkItem.task_id``), not a ``UserTaskStatus``: the
items are already where the workers claim, retry, take over and cancel the courses, so the
state is read from the one record that the lifecycle keeps, never mirrored into a second one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from opaque_keys.edx.keys import CourseKey

from plugin_app import runners, storage
from plugin_app.data import UNFINISHED, ItemStatus, ProcessKind
from plugin_app.exports import create_export
from plugin_app.models import BulkItem

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# How often a synchronous request looks at its courses while the workers export them: soon
# at first (a small course takes a fraction of a second), then every half second.
FIRST_POLL_SECONDS, LAST_POLL_SECONDS = 0.02, 0.5

# django-user-tasks' state names (user_tasks/models.py ``UserTaskStatus``).
PENDING, IN_PROGRESS, SUCCEEDED = "Pending", "In Progress", "Succeeded"
FAILED, CANCELED, RETRYING = "Failed", "Canceled", "Retrying"


class TaskNotFound(Exception):
    """No export task of the user's for that course has that id (all three look the same)."""


@dataclass
class ExportAnswer:
    """The answer of a synchronous export, in both versions of the anchor's contract."""

    successful_uploads: dict[str, str] = field(default_factory=dict)
    failed_uploads: dict[str, str] = field(default_factory=dict)
    upload_urls: dict[str, str] = field(default_factory=dict)
    upload_task_ids: dict[str, str] = field(default_factory=dict)
    upload_keys: dict[str, str] = field(default_factory=dict)
    pending_uploads: list[str] = field(default_factory=list)


def export_and_wait(user: User, course_ids: list[str]) -> str:
    """Export the courses for a synchronous request; return the process id once every course has
    ended, or once ``EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS`` have passed (the rest keep running).

    With a wait, the workers export the courses, so that nothing is lost when the client gives
    up; without one (0), this request exports them itself, in threads."""
    wait = settings.EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS
    if not wait:
        process_id = create_export(user, course_ids, send=False)
        runners.run_now(process_id)
        return process_id
    process_id = create_export(user, course_ids)
    deadline = time.monotonic() + wait
    unfinished = BulkItem.objects.filter(process__process_id=process_id, status__in=UNFINISHED)
    pause = FIRST_POLL_SECONDS
    while unfinished.exists() and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, LAST_POLL_SECONDS)
    return process_id


def export_answer(process_id: str) -> ExportAnswer:
    """Each course of the export as it stands: ended ones in ``successful_uploads`` (a download
    URL) or ``failed_uploads``, running ones in ``pending_uploads``; every course that became a
    task in ``upload_task_ids``, ``upload_urls`` and ``upload_keys`` (its object's bucket key)."""
    answer = ExportAnswer()
    for item in BulkItem.objects.filter(process__process_id=process_id).order_by("position"):
        course_id = item.course_id
        if item.task_id is not None:  # a valid key: a task, whatever becomes of it
            answer.upload_task_ids[course_id] = str(item.task_id)
            key = _object_key(course_id, process_id)
            if key is not None:
                answer.upload_keys[course_id] = key
                answer.upload_urls[course_id] = storage.object_url(key)
        if item.status == ItemStatus.SUCCESS:
            answer.successful_uploads[course_id] = storage.download_url(item.result["object"])
        elif item.status in (ItemStatus.FAILED, ItemStatus.CANCELED):
            answer.failed_uploads[course_id] = item.error
        else:
            answer.pending_uploads.append(course_id)
    return answer


def _object_key(course_id: str, process_id: str) -> str | None:
    """The bucket key of the course's export in the process; None for an id that cannot name an
    object (an old-style key such as ``../../x``: its export fails saying so)."""
    try:
        return storage.export_name(str(CourseKey.from_string(course_id)), process_id)
    except (ValueError, SuspiciousFileOperation):
        return None


def task_state(user: User, course_id: str, task_id: str) -> dict[str, str]:
    """``{"state": ...}`` of the user's export task of that course, with ``error`` when it failed
    or was canceled, ``upload_url`` and ``upload_key`` once it succeeded. Raises TaskNotFound."""
    try:
        item = BulkItem.objects.select_related("process").get(
            task_id=task_id, course_id=course_id, process__owner=user, process__kind=ProcessKind.EXPORT
        )
    except (BulkItem.DoesNotExist, ValidationError):
        raise TaskNotFound(task_id) from None
    state = {"state": _STATES[ItemStatus(item.status)]}
    if item.status == ItemStatus.PENDING and item.attempts:
        state["state"] = RETRYING  # run before, and given back for another try (a transient error)
    if item.error:
        state["error"] = item.error
    if item.status == ItemStatus.SUCCESS:
        state["upload_url"] = storage.download_url(item.result["object"])
        state["upload_key"] = item.result["object"]
    return state


_STATES = {
    ItemStatus.PENDING: PENDING,
    ItemStatus.RUNNING: IN_PROGRESS,
    ItemStatus.SUCCESS: SUCCEEDED,
    ItemStatus.FAILED: FAILED,
    ItemStatus.CANCELED: CANCELED,
}
