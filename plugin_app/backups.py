"""
Course backups: dated, checksummed versions of each course that changed since its last backup.

A backup process has one item per course. Each item holds its course against other runs,
compares the course's fingerprint with the one of its newest backup, and exports only when they
differ, into ``<prefix>backups/<course_id>/<UTC stamp>.tar.gz``, the sha256 counted as the bytes
stream out. Before the items fan out, :func:`plan_unchanged` settles the unchanged courses of the
run together (one hold, one query, one LIST), so that only the others cost a task each. Once
every item has ended, :func:`finish_run` prunes the courses the run backed up and writes the run
manifest ``<prefix>backups/runs/<UTC stamp>-<processId>.json``.

The fingerprint is taken before the export: a course changed in between is exported with the
older fingerprint, so the next run finds it changed and exports it again (never the reverse).

Every object is recorded (``BackupVersion``) before its first byte is sent and completed after
its last. A version still incomplete when its course is next held belongs to a runner that died:
its object and unfinished multipart upload are discarded before anything else happens, so no
partial or orphan object outlives the next run. The bucket is the source of truth: a course's
rows are first reconciled with its stored objects and the run manifests (``backup_index``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connections
from django.db.models import Count, Min, Q
from django.utils import timezone

from plugin_app import access, contexts, kinds, lifecycle, runners, storage
from plugin_app.backends.base import CourseNotFound
from plugin_app.backup_index import PREFIX, STAMP_FORMAT, reconcile_if_reachable
from plugin_app.course_holds import held, held_all
from plugin_app.data import ItemOutcome, ItemStatus, ProcessKind
from plugin_app.export import ExportError, storage_name
from plugin_app.models import BackupCourse, BackupVersion, BulkItem, BulkProcess

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

EXPORTED, UNCHANGED, FAILED = "exported", "unchanged", "failed"
OUTCOMES = (EXPORTED, UNCHANGED, FAILED)
BUSY = "Another backup run is backing up this course right now; it will be current once that run ends."
UNEXPECTED = "Backup failed: an unexpected error occurred; see the server logs."
CANCELED = "Canceled before the backup was stored."
_STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)


def stamp(moment: datetime) -> str:
    """A UTC time as object names carry it; in lexical order is in time order."""
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def version_name(course_id: str, moment: datetime) -> str:
    """Where the backup of the course taken at ``moment`` is stored; ValueError if the course id
    would not make exactly one folder below ``backups/``."""
    if "/" in course_id or course_id in ("", ".", "..", "runs"):
        raise ValueError(f"Unsafe course id for a backup name: {course_id!r}")
    return storage.object_name(PREFIX, course_id, stamp(moment) + contexts.object_suffix(course_id))


def manifest_name(process: BulkProcess) -> str:
    """The run manifest's name: the same for every attempt at finishing the run."""
    return storage.object_name(PREFIX, "runs", f"{stamp(process.created)}-{process.process_id.hex}.json")


def manifest_key(process_id: str) -> str:
    return manifest_name(BulkProcess.objects.get(process_id=process_id))


def check_course_id(course_id: str) -> str | None:
    """Why the course (or library) cannot be backed up whatever its content (one sentence), or None."""
    invalid = contexts.invalid_key(course_id)
    if invalid:
        return invalid
    try:
        storage_name(lambda: version_name(course_id, timezone.now()))
    except ExportError as exc:
        return str(exc)
    return None


# Cleaning up after a dead holder -------------------------------------------------------------


def _newest_after_cleanup(course: BackupCourse) -> BackupVersion | None:
    """The newest complete backup of the course, once what a dead holder left is removed:
    versions recorded but never completed (their object, and their unfinished upload)."""
    newest = None
    for version in course.versions.filter(deleted_at__isnull=True):  # newest first
        if version.size is None:
            storage.discard(version.name)
            version.delete()
        elif newest is None:
            newest = version
    return newest


# Unchanged courses, in bulk ---------------------------------------------------------------------


def plan_unchanged(process: BulkProcess) -> None:
    """The lifecycle's ``plan``: settle the run's unchanged courses before any task is sent.

    Held together (one UPDATE), their newest versions read in one query and their objects found
    by one LIST, an unchanged course costs its fingerprint and no task. A course held by another
    run, with an incomplete version, missing from the bucket or changed is left to its item.
    """
    if not process.options.get("changed_only", True):
        return
    pending = {item.course_id: item.id for item in process.items.filter(status=ItemStatus.PENDING)}
    with held_all(list(pending), f"{process.process_id.hex}:plan") as courses:
        # Only the run's own courses, however the database compares their ids.
        newest = {c: v for c, v in _newest_complete(courses).items() if c in pending}
        stored = storage.existing([version.name for version in newest.values()])
        outcomes = {
            pending[course_id]: ItemOutcome(ItemStatus.SUCCESS, _described(version, UNCHANGED))
            for course_id, version in newest.items()
            if version.name in stored and _fingerprint(course_id) == version.fingerprint
        }
        lifecycle.finish_pending(outcomes)


def _newest_complete(courses: list[BackupCourse]) -> dict[str, BackupVersion]:
    """Each course's newest complete version, for courses a dead holder left nothing incomplete of."""
    newest: dict[str, BackupVersion] = {}
    incomplete = set()
    for version in BackupVersion.objects.filter(course__in=courses, deleted_at__isnull=True).select_related(
        "course"
    ):  # newest first within a course
        if version.size is None:
            incomplete.add(version.course.course_id)
        else:
            newest.setdefault(version.course.course_id, version)
    return {course_id: version for course_id, version in newest.items() if course_id not in incomplete}


def _fingerprint(course_id: str) -> str | None:
    try:
        return contexts.fingerprint(course_id)
    except CourseNotFound:
        return None


# One course -----------------------------------------------------------------------------------


def start_backup(user: User, course_ids: list[str], changed_only: bool = True, *, send: bool = True) -> str:
    """Record a backup run of the courses for the user and (``send``) queue it; its process id.

    Courses the user may not author, that do not exist, or whose id cannot name a backup are
    recorded failed with the reason. Raises lifecycle.QuotaExceeded or QueueUnavailable (then
    nothing is recorded).
    """
    items = []
    for position, course_id in enumerate(dict.fromkeys(course_ids)):
        item = contexts.requested_item(user, position, course_id)
        reason = None if item.status == ItemStatus.FAILED else check_course_id(course_id)
        if reason:
            item.status, item.error = ItemStatus.FAILED, reason
        items.append(item)
    return lifecycle.start(user, ProcessKind.BACKUP, items, {"changed_only": changed_only}, send=send)


def run_item(process: BulkProcess, item: BulkItem) -> ItemOutcome:
    """The lifecycle's ``run_item`` of a backup: one course, as the process's options say."""
    process_id = process.process_id.hex
    try:
        return backup_course(
            item.course_id,
            process_id,
            f"{process_id}:{item.pk}",
            bool(process.options.get("changed_only", True)),
            runners.cancel_check(process),
        )
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()  # a pool thread of ``run_now``: give its connection back


def backup_course(
    course_id: str,
    process_id: str,
    holder: str,
    changed_only: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> ItemOutcome:
    """Back up one course unless its newest backup is current; a failure keeps older versions.

    ``should_stop`` (a cancel) is asked between parts of the upload: the course then ends
    canceled, and nothing of it is stored.
    """
    reason = check_course_id(course_id)
    if reason:
        return ItemOutcome(ItemStatus.FAILED, {"outcome": FAILED}, reason)
    with held(course_id, holder) as course:
        if course is None:
            return ItemOutcome(ItemStatus.FAILED, {"outcome": FAILED}, BUSY)
        reconcile_if_reachable(course_id)  # a fresh database resumes from the bucket's newest version
        newest = _newest_after_cleanup(course)
        try:
            outcome = _backup_held(course, newest, course_id, process_id, changed_only, should_stop)
        except storage.Stopped:
            return ItemOutcome(ItemStatus.CANCELED, {"outcome": "canceled"}, CANCELED)
        except (CourseNotFound, ExportError) as exc:
            outcome = ItemOutcome(ItemStatus.FAILED, {"outcome": FAILED}, _reason(exc))
        except lifecycle.TRANSIENT_ERRORS:
            raise  # the database or the bucket (a HEAD, a discard): the lifecycle runs the item again
        except Exception:  # pylint: disable=broad-except
            log.exception("Backup of %s failed", course_id)
            outcome = ItemOutcome(ItemStatus.FAILED, {"outcome": FAILED}, UNEXPECTED)
        if outcome.status == ItemStatus.FAILED:
            course.last_failure, course.last_failure_reason = timezone.now(), outcome.error
            course.save(update_fields=["last_failure", "last_failure_reason"])
    return outcome


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, CourseNotFound) else str(exc)


def _backup_held(
    course: BackupCourse,
    newest: BackupVersion | None,
    course_id: str,
    process_id: str,
    changed_only: bool,
    should_stop: Callable[[], bool] | None,
) -> ItemOutcome:
    """Back up the course (or library) ``course_id``, the item's own key, whose record is held."""
    fingerprint = contexts.fingerprint(course_id)
    # An object removed behind our back (a bucket lifecycle rule, a person) is no backup.
    if (
        changed_only
        and newest
        and newest.fingerprint == fingerprint
        and storage.get_storage().exists(newest.name)
    ):
        return ItemOutcome(ItemStatus.SUCCESS, _described(newest, UNCHANGED))
    moment = timezone.now()
    version = BackupVersion.objects.create(
        course=course,
        name=version_name(course_id, moment),  # the item's own key, not the record's
        created=moment,
        process_id=process_id,
        fingerprint=fingerprint,
    )
    try:
        written = contexts.write(course_id, version.name, should_stop)
    except BaseException:
        # The writer aborted its upload; if the database is what failed, the next hold cleans up.
        version.delete()
        raise
    version.size, version.sha256 = written.size, written.sha256
    version.save(update_fields=["size", "sha256"])
    return ItemOutcome(ItemStatus.SUCCESS, _described(version, EXPORTED))


def _described(version: BackupVersion, outcome: str) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "key": version.name,
        "size": version.size,
        "sha256": version.sha256,
        "fingerprint": version.fingerprint,
        "created": version.created.isoformat(),
    }


def present_item(item: BulkItem, detail: bool) -> dict[str, Any]:
    """A course of a backup as the status API shows it."""
    result = item.result or {}
    if item.status in (ItemStatus.FAILED, ItemStatus.CANCELED) and item.error:
        return {"course_id": item.course_id, "status": str(item.status), "reason": item.error}
    if item.status != ItemStatus.SUCCESS:
        return {"course_id": item.course_id, "status": str(item.status)}
    shown = {name: result[name] for name in ("key", "size", "sha256")}
    if detail:  # the run has ended: URLs are worth presigning
        shown["url"] = storage.download_url(result["key"])
    return {"course_id": item.course_id, "status": result["outcome"], **shown}


# The end of a run -----------------------------------------------------------------------------


def finish_run(process: BulkProcess) -> None:
    """The lifecycle's ``before_finish``: prune the courses this run backed up, then write the
    run manifest (deletions included). Safe to run again: the manifest's name is fixed.

    The bucket refusing either is logged, not raised: the outcomes are in the database and the
    status API shows them, and a run must end. A course left unpruned is pruned by its next run.
    """
    process_id = process.process_id.hex
    items = list(process.items.order_by("position"))
    for course_id in _with_surplus([item.course_id for item in items if item.status == ItemStatus.SUCCESS]):
        try:
            prune(course_id, process_id, f"{process_id}:finish")
        except _STORAGE_ERRORS as exc:
            log.warning("Could not prune the backups of %s: %r", course_id, exc)
    deleted = BackupVersion.objects.filter(deleted_by=process_id, deleted_at__isnull=False)
    manifest = {
        "processId": process_id,
        "time": process.created.astimezone(UTC).isoformat(),
        "courses": [_manifest_entry(item) for item in items],
        "deleted": [
            {"course_id": v.course.course_id, "key": v.name, "size": v.size, "sha256": v.sha256}
            for v in deleted.select_related("course").order_by("course__course_id", "-created")
        ],
    }
    try:
        with storage.open_writer(manifest_name(process), "application/json") as out:
            out.write(json.dumps(manifest, indent=2).encode("utf-8"))
    except _STORAGE_ERRORS as exc:
        log.error("Could not store the manifest of backup run %s: %r", process_id, exc)


def _manifest_entry(item: BulkItem) -> dict[str, Any]:
    if item.status != ItemStatus.SUCCESS:
        status = "canceled" if item.status == ItemStatus.CANCELED else FAILED
        return {
            "course_id": item.course_id,
            "status": status,
            "reason": item.error or "Canceled before it ran.",
        }
    result = item.result
    return {"course_id": item.course_id, "status": result["outcome"]} | {
        name: result[name] for name in ("key", "size", "sha256", "fingerprint", "created")
    }


def _retention() -> tuple[int, datetime | None]:
    """Versions kept per course, and the time before which a version is too old (None: no limit)."""
    max_age = settings.EXPORTBULK_BACKUP_MAX_AGE_DAYS
    return max(1, settings.EXPORTBULK_BACKUP_KEEP), timezone.now() - timedelta(
        days=max_age
    ) if max_age else None


def _with_surplus(course_ids: list[str]) -> list[str]:
    """The courses among these with a version retention would delete, in one query: most courses
    of a run have none, and need no hold."""
    keep, cutoff = _retention()
    surplus = Q(count__gt=keep)
    if cutoff:
        surplus |= Q(count__gt=1, oldest__lt=cutoff)
    rows = (
        BackupVersion.objects.filter(
            course__course_id__in=course_ids, size__isnull=False, deleted_at__isnull=True
        )
        .values("course__course_id")
        .annotate(count=Count("id"), oldest=Min("created"))
        .filter(surplus)
    )
    return sorted(row["course__course_id"] for row in rows)


def prune(course_id: str, process_id: str, holder: str) -> None:
    """Delete the course's versions beyond ``EXPORTBULK_BACKUP_KEEP`` or older than
    ``EXPORTBULK_BACKUP_MAX_AGE_DAYS``, never its newest; each marked ``deleted_by`` the run.

    A course another run holds is left to that run, which prunes it when it ends."""
    keep, cutoff = _retention()
    with held(course_id, holder) as course:
        if course is None:
            return
        versions = list(course.versions.filter(size__isnull=False, deleted_at__isnull=True))
        for index, version in enumerate(versions):
            if index == 0 or (index < keep and not (cutoff and version.created < cutoff)):
                continue
            version.deleted_by = process_id  # recorded first: a run killed here is redone by the next
            version.save(update_fields=["deleted_by"])
            storage.discard(version.name)
            version.deleted_at = timezone.now()
            version.save(update_fields=["deleted_at"])


SPEC = kinds.KindSpec(
    ProcessKind.BACKUP,
    run_item,
    before_finish=finish_run,
    present_item=present_item,
    plan=plan_unchanged,
    refusal=access.write_refusal,
)
