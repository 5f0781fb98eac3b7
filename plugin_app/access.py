"""
Access to a process's courses, checked again when a worker starts on them and whenever the
process is shown.

A process keeps what it made, but the caller's right to it is today's: an author removed from a
course gets no new URL for its export nor the report describing it, while the rest stays; and
work that waited in the queue writes nothing into a course its owner may no longer write.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth.models import User
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey

from plugin_app.backends import get_backend
from plugin_app.backends.base import CoursePermission
from plugin_app.backends.libraries import get_library_backend, library_key
from plugin_app.data import ProcessInfo, ProcessKind
from plugin_app.models import BulkItem, BulkProcess

PERMISSION_WITHDRAWN = "Permission denied: you no longer have Studio write access to this course."
REPORT_WITHHELD = "Withheld: you no longer have access to some of its courses."
# What each kind of process does to its courses: the permission checked at request time.
PERMISSION_OF_KIND = {
    ProcessKind.EXPORT: CoursePermission.EXPORT,
    ProcessKind.BACKUP: CoursePermission.EXPORT,
    ProcessKind.RESTORE: CoursePermission.IMPORT,
    ProcessKind.UPLOAD: CoursePermission.UPLOAD,
}


def _allowed(user: User, course_id: str, permission: CoursePermission) -> bool:
    """Whether the user may still do to the course (or v2 library: edit rights on it) what the
    process does; True for an id that failed at request time, which has nothing to withdraw."""
    library = library_key(course_id)
    if library is not None:
        return get_library_backend().may_author(user, library)
    try:
        course_key = CourseKey.from_string(course_id)
    except InvalidKeyError:
        return True
    return get_backend().has_write_access(user, course_key, permission)


def write_refusal(process: BulkProcess, course_id: str) -> str:
    """PERMISSION_WITHDRAWN when the process's owner may no longer do to the course what the
    process does (a kind's ``refusal``), else ""."""
    permission = PERMISSION_OF_KIND[ProcessKind(process.kind)]
    return "" if _allowed(process.owner, course_id, permission) else PERMISSION_WITHDRAWN


def refused_courses(user: User, process_id: str) -> set[str]:
    """The courses of the process that the user may no longer author."""
    kind = BulkProcess.objects.values_list("kind", flat=True).get(process_id=process_id)
    permission = PERMISSION_OF_KIND[ProcessKind(kind)]
    course_ids = set(
        BulkItem.objects.filter(process__process_id=process_id).values_list("course_id", flat=True).distinct()
    )
    return {course_id for course_id in course_ids if not _allowed(user, course_id, permission)}


def as_allowed_now(user: User, info: ProcessInfo) -> ProcessInfo:
    """The process as the user may see it now: refused courses without URL, no report (nor backup
    manifest) while any is."""
    refused = refused_courses(user, info.process_id)
    if not refused:
        return info
    changes: dict[str, Any] = {"report_url": None, "report_missing": info.report_missing or REPORT_WITHHELD}
    if info.successful_uploads is not None:
        changes["successful_uploads"] = {
            course: url for course, url in info.successful_uploads.items() if course not in refused
        }
        changes["failed_uploads"] = {
            **(info.failed_uploads or {}),
            **{course: PERMISSION_WITHDRAWN for course in info.successful_uploads if course in refused},
        }
    if info.items is not None:
        changes["items"] = [
            _withdrawn(item) if item.get("url") and item.get("course_id") in refused else item
            for item in info.items
        ]
    return dataclasses.replace(info, **changes)


def _withdrawn(item: dict[str, Any]) -> dict[str, Any]:
    """An item of a course the user may no longer author: what it was, without its download URL."""
    return {**{key: value for key, value in item.items() if key != "url"}, "reason": PERMISSION_WITHDRAWN}
