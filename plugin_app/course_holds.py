"""
Holding courses for backups: a course's backup record is held by one run at a time (``held_by``
and a renewed lease), so that two runs never export, clean up or prune the same course at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DatabaseError, IntegrityError, InterfaceError
from django.db.models import Q
from django.utils import timezone

from plugin_app.lease import expiry, renewing
from plugin_app.models import BackupCourse


@contextlib.contextmanager
def held(course_id: str, holder: str) -> Iterator[BackupCourse | None]:
    """The course's backup record, held by ``holder`` for the ``with`` block; None when another
    holder has it. The hold is renewed in the background and lapses if its holder dies."""
    try:
        BackupCourse.objects.get_or_create(course_id=course_id)
    except IntegrityError:  # created meanwhile by another run
        pass
    with held_all([course_id], holder) as courses:
        yield courses[0] if courses else None


@contextlib.contextmanager
def held_all(course_ids: list[str], holder: str) -> Iterator[list[BackupCourse]]:
    """Those of the courses' records that no other holder has, held by ``holder`` for the
    ``with`` block (one UPDATE for them all); courses without a record are left out."""
    free = Q(lease_expires__isnull=True) | Q(lease_expires__lt=timezone.now()) | Q(held_by=holder)
    BackupCourse.objects.filter(course_id__in=course_ids).filter(free).update(
        held_by=holder, lease_expires=expiry()
    )
    mine = BackupCourse.objects.filter(course_id__in=course_ids, held_by=holder)
    try:
        with renewing(mine):
            yield list(mine)
    finally:
        with contextlib.suppress(DatabaseError, InterfaceError):  # an expired hold is as good
            mine.update(held_by="", lease_expires=None)
