"""
Restoring courses from tarballs: the ``restore`` process kind.

At request time each item's target is checked (valid key, the caller may write it or create it)
and its source resolved to one storage object (``restore_requests``); refused items fail at
once, and a caller who may not write a course learns nothing of whether it exists. Each item
then runs in a worker, which checks the owner's access again (``refusal``: it may have been
withdrawn meanwhile): the tarball is unpacked with every check (``tarball_checks``), olxcleaner
looks at it within its limits (``olx_validation``), existing courses need ``overwrite``, and
only when nothing was found does the backend apply it. A dry run stops before that; a cancel
stops it between these phases.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from plugin_app import kinds, lifecycle, olx_validation, runners, storage
from plugin_app.backends import get_backend
from plugin_app.backends.base import CourseBackend, CoursePermission, RestoreRefused
from plugin_app.course_holds import held
from plugin_app.data import ItemOutcome, ItemStatus, ProcessKind
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.olx_validation import LEVELS, MAX_FINDINGS, Validation, capped, validate
from plugin_app.restore_requests import BACKUP_PREFIX, backup_object, bucket_object, target_key
from plugin_app.tarball_checks import unpack

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PERMISSION_DENIED = "Permission denied: you may not write this course, nor create it."
PERMISSION_WITHDRAWN = "Permission denied: you may no longer write this course, nor create it."
RESTORED, WOULD_RESTORE, FAILED, CANCELED = "restored", "would restore", "failed", "canceled"
BACKUP_RUNNING = "A backup of this course is running: restore it again once that backup has ended."
# A reason lists an item's problems; a hostile tarball's are capped where they are found, this
# bounds the status of rows stored before.
_MAX_REASON_CHARS = 1000


@dataclass
class PlannedItem:
    """One requested restore as decided at request time; ``error`` set: refused."""

    course_id: str
    source: str
    object_name: str = ""
    error: str = ""
    existed: bool = False

    def as_data(self) -> dict[str, Any]:
        return {"source": self.source, "object": self.object_name, "existed": self.existed}


# Request time ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextKind:
    """A learning context restored its own way (v2 libraries: ``library_restores``): the ids it
    claims are planned and run by its functions, with the same items, outcomes and report."""

    claims: Callable[[str], bool]
    plan_one: Callable[[User, str, str, dict[str, str]], PlannedItem]
    restore_one: Callable[[str, str, str, User, dict[str, Any], bool], Restored]


CONTEXT_KINDS: list[ContextKind] = []


def register_context(kind: ContextKind) -> None:
    """Make a kind of learning context known (the app's ``ready``; again is harmless)."""
    if kind not in CONTEXT_KINDS:
        CONTEXT_KINDS.append(kind)


def _context_kind(course_id: str) -> ContextKind | None:
    return next((kind for kind in CONTEXT_KINDS if kind.claims(course_id)), None)


def plan(user: User, pairs: list[tuple[str, str]], uploads: dict[str, str]) -> list[PlannedItem]:
    """Each requested restore checked and its source resolved; ``uploads`` maps file names to objects."""
    backend = get_backend()
    return [_plan_one(backend, user, course_id, source, uploads) for course_id, source in pairs]


def _plan_one(
    backend: CourseBackend, user: User, course_id: str, source: str, uploads: dict[str, str]
) -> PlannedItem:
    other = _context_kind(course_id)
    if other:
        return other.plan_one(user, course_id, source, uploads)
    item = PlannedItem(course_id, source)
    key = target_key(course_id)
    if key is None:
        item.error = "Invalid course key: a course run key (course-v1:ORG+NUMBER+RUN) is required."
        return item
    if not may_write(backend, user, key):
        item.error = PERMISSION_DENIED  # before anything that depends on the course existing
        return item
    item.existed = backend.course_exists(key)
    if source in uploads:
        item.object_name = uploads[source]
    elif source.startswith(BACKUP_PREFIX):
        item.object_name, item.error = backup_object(str(key), source[len(BACKUP_PREFIX) :])
    else:
        item.object_name, item.error = bucket_object(backend, user, source)
    return item


def refusal(process: BulkProcess, course_id: str) -> str:
    """The kind's ``refusal``: PERMISSION_WITHDRAWN when the owner may no longer write the course,
    nor create it, else ""."""
    key = target_key(course_id)
    if key is None or may_write(get_backend(), process.owner, key):
        return ""  # (an invalid key failed at request time)
    return PERMISSION_WITHDRAWN


def may_write(backend: CourseBackend, user: User, key: CourseKey) -> bool:
    """Write access to the course, or (for a course that does not exist) the right to create it."""
    if backend.has_write_access(user, key, CoursePermission.IMPORT):
        return True
    return backend.can_create_course(user, key) and not backend.course_exists(key)


def create_restore(
    user: User, pairs: list[tuple[str, str]], files: Iterable[tuple[str, BinaryIO]], options: dict[str, Any]
) -> str:
    """Stage the uploaded tarballs, plan every item and start the process; return its id.

    Raises lifecycle.QuotaExceeded or lifecycle.QueueUnavailable; then nothing is left stored.
    """
    process_id = uuid.uuid4()
    uploads: dict[str, str] = {}
    try:
        for index, (name, stream) in enumerate(files):
            uploads[name] = staged_folder(process_id.hex) + f"{index}.tar.gz"
            with storage.open_writer(uploads[name], "application/gzip") as out:
                shutil.copyfileobj(stream, out, 1024 * 1024)
        items = [
            BulkItem(
                position=position,
                course_id=planned.course_id,
                data=planned.as_data(),
                status=ItemStatus.FAILED if planned.error else ItemStatus.PENDING,
                error=planned.error,
            )
            for position, planned in enumerate(plan(user, pairs, uploads))
        ]
        return lifecycle.start(user, ProcessKind.RESTORE, items, options, process_id=process_id)
    except BaseException:
        _remove(uploads.values())  # once the process exists, the lifecycle removes them as it ends
        raise


def staged_folder(process_hex: str) -> str:
    """Where a request's uploaded tarballs wait while its process runs."""
    return storage.object_name("restores", process_hex) + "/"


def _remove(names: Iterable[str]) -> None:
    for name in names:
        storage.get_storage().delete(name)


# In the worker --------------------------------------------------------------------------------


@dataclass
class Restored:
    """What one item's run found and did; ``findings_total`` counts those not kept too."""

    outcome: str
    error: str = ""
    findings: list[dict[str, Any]] | None = None
    findings_total: int = 0


def restore_one(
    item_id: str,
    course_id: str,
    object_name: str,
    user: User,
    options: dict[str, Any],
    existed: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> Restored:
    """Unpack, check and (unless a dry run) apply one tarball. Storage errors other than a missing
    object propagate, for the caller to retry. ``existed``: whether the course existed when the
    request's permissions were checked. ``should_stop`` (a cancel) is asked between phases."""
    backend = get_backend()
    key = target_key(course_id)
    assert key is not None  # checked at request time
    if backend.restored_before(key, item_id):  # an earlier attempt died after its swap
        return Restored(RESTORED, findings=[])
    stopped = should_stop or (lambda: False)
    workspace = backend.restore_workspace(item_id)
    try:
        try:
            with storage.open_reader(object_name) as stream:
                unpacked = unpack(stream, workspace)
        except FileNotFoundError:
            return Restored(FAILED, "Source not found: the object is not in the bucket (any more).")
        if stopped():
            return Restored(CANCELED, "Canceled before the course was checked.")
        # olxcleaner never sees a tarball the checks refused.
        checked = validate(unpacked.course_dir, should_stop) if unpacked.course_dir else Validation()
        done = _decided(backend, user, key, existed, options, unpacked.problems, checked)
        if done.outcome != RESTORED or options.get("dry_run"):
            return done
        if stopped():
            return Restored(CANCELED, "Canceled before the course was written.")
        assert unpacked.course_dir is not None  # no problem found
        source_key = CourseLocator(unpacked.org, unpacked.number, unpacked.run)
        # Held as a backup holds it: no backup captures the course half-imported.
        with held(str(key), f"restore:{item_id}") as hold:
            if hold is None:
                return Restored(FAILED, BACKUP_RUNNING, done.findings, done.findings_total)
            try:
                backend.restore_course(key, unpacked.course_dir, source_key, user, item_id)
            except RestoreRefused as refused:
                return Restored(FAILED, str(refused), done.findings, done.findings_total)
        return done
    finally:
        backend.discard_workspace(item_id)


def _decided(
    backend: CourseBackend,
    user: User,
    key: CourseLocator,
    existed: bool,
    options: dict[str, Any],
    found: list[str],
    checked: Validation,
) -> Restored:
    """What an unpacked tarball comes to, with the problems its checks ``found`` and what
    olxcleaner said (RESTORED: go ahead); every problem is reported together."""
    if checked.problem == olx_validation.CANCELED:
        return Restored(CANCELED, checked.problem)
    problems = [*found, checked.problem] if checked.problem else list(found)
    level = (settings.EXPORTBULK_RESTORE_BLOCKING_LEVEL or "").upper()
    blocking = checked.at_or_above(level) if level in LEVELS else 0
    if blocking:
        problems.append(f"olxcleaner found {blocking} problem(s) at or above {level}.")
    exists = backend.course_exists(key)
    if exists and not existed and not backend.has_write_access(user, key, CoursePermission.IMPORT):
        return Restored(FAILED, PERMISSION_DENIED)  # created by someone else since the request
    if exists and not options.get("overwrite"):
        problems.append("The course exists: set overwrite to replace it.")
    outcome = FAILED if problems else WOULD_RESTORE if options.get("dry_run") else RESTORED
    return Restored(outcome, " ".join(problems), checked.findings, checked.total)


# The process kind -----------------------------------------------------------------------------


def run_item(process: BulkProcess, item: BulkItem) -> ItemOutcome:
    """The lifecycle's ``run_item`` of a restore: one tarball into one course."""
    token = f"{process.process_id.hex}-{item.position}"
    data, options = item.data, process.options or {}
    other = _context_kind(item.course_id)
    if other:
        done = other.restore_one(
            token, item.course_id, data["object"], process.owner, options, data.get("existed", True)
        )
    else:
        done = restore_one(
            token,
            item.course_id,
            data["object"],
            process.owner,
            options,
            data.get("existed", True),
            runners.cancel_check(process),
        )
    result = {"outcome": done.outcome, "findings": done.findings or [], "findings_total": done.findings_total}
    if done.outcome in (FAILED, CANCELED):
        status = ItemStatus.FAILED if done.outcome == FAILED else ItemStatus.CANCELED
        return ItemOutcome(status, result, done.error)
    return ItemOutcome(ItemStatus.SUCCESS, result)


def present_item(item: BulkItem, ended: bool) -> dict[str, Any]:
    """An item as the status API shows it: its outcome, why it failed, and olxcleaner's findings."""
    status = {ItemStatus.SUCCESS: item.result.get("outcome"), ItemStatus.FAILED: FAILED}.get(
        ItemStatus(item.status), str(item.status)
    )
    findings = item.result.get("findings", [])
    return {
        "course_id": item.course_id,
        "source": item.data.get("source", ""),
        "status": status,
        "reason": item.error[:_MAX_REASON_CHARS],
        # Capped again: rows stored before the caps existed may hold thousands.
        "findings": capped(findings[:MAX_FINDINGS]),
        "findings_total": item.result.get("findings_total", len(findings)),
    }


def report_rows(process: BulkProcess) -> tuple[list[str], list[list[str]]]:
    rows = [present_item(item, True) for item in process.items.order_by("position")]
    header = ["course_id", "source", "status", "reason", "findings"]
    return header, [
        [r["course_id"], r["source"], r["status"], r["reason"], str(r["findings_total"])] for r in rows
    ]


def remove_staged(process: BulkProcess) -> None:
    """The uploaded tarballs are not kept once the process ends (the lifecycle calls this)."""
    folder = staged_folder(process.process_id.hex)
    try:
        _folders, files = storage.get_storage().listdir(folder)
    except FileNotFoundError:
        return
    _remove(folder + name for name in files)
    if isinstance(storage.get_storage(), FileSystemStorage):
        with contextlib.suppress(OSError):
            os.rmdir(storage.get_storage().path(folder))


SPEC = kinds.KindSpec(
    ProcessKind.RESTORE,
    run_item,
    remove_staged=remove_staged,
    present_item=present_item,
    report_rows=report_rows,
    # Each item unpacks a tarball of up to EXPORTBULK_RESTORE_MAX_UNCOMPRESSED_BYTES.
    per_user_in_flight=lambda: int(settings.EXPORTBULK_RESTORE_MAX_ITEMS_RUNNING_PER_USER),
    refusal=refusal,
)
