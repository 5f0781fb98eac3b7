"""
Restoring courses from tarballs: the ``restore`` process kind.

At request time each item's target is checked (valid key, the caller may write it or create it)
and its source resolved to one storage object; refused items fail at once, and a caller who may
not write a course learns nothing of whether it exists. Each item then runs in a worker, which
checks the owner's access again (``refusal``: it may have been withdrawn meanwhile): the tarball
is unpacked with every check (``tarball_checks``), olxcleaner looks at it within its limits
(``olx_validation``), existing courses need ``overwrite``, and only when nothing was found does
the backend apply it. A dry run stops before that; a cancel stops it between these phases.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from plugin_app import kinds, lifecycle, olx_validation, runners, storage
from plugin_app.backends import get_backend
from plugin_app.backends.base import CourseBackend, CoursePermission, RestoreRefused
from plugin_app.course_holds import held
from plugin_app.data import ItemOutcome, ItemStatus, ProcessKind
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.olx_validation import LEVELS, MAX_FINDINGS, Validation, capped, validate
from plugin_app.tarball_checks import unpack

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PERMISSION_DENIED = "Permission denied: you may not write this course, nor create it."
PERMISSION_WITHDRAWN = "Permission denied: you may no longer write this course, nor create it."
RESTORED, WOULD_RESTORE, FAILED, CANCELED = "restored", "would restore", "failed", "canceled"
BACKUP_RUNNING = "A backup of this course is running: restore it again once that backup has ended."
BACKUP_PREFIX = "backup:"
# A reason lists an item's problems; a hostile tarball's are capped where they are found, this
# bounds the status of rows stored before.
_MAX_REASON_CHARS = 1000
# Backup versions are named by their UTC time, "20261123T193000.123456Z" (the fraction optional).
_TIMESTAMP = r"\d{8}T\d{6}(?:\.\d{1,6})?Z"


class RestoreRejected(Exception):
    """A restore request that cannot start at all; the message names the field."""


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


def parse_items(raw: object, uploaded: set[str] | None = None) -> list[tuple[str, str]]:
    """The ``items`` of a request as (course_id, source) pairs; RestoreRejected names what is wrong."""
    if not isinstance(raw, list) or not raw:
        raise RestoreRejected("items: a non-empty list of {source, course_id} objects is required.")
    limit = settings.EXPORTBULK_MAX_COURSES_PER_REQUEST
    if len(raw) > limit:
        raise RestoreRejected(f"items: at most {limit} items per request ({len(raw)} sent).")
    pairs = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RestoreRejected(f"items[{index}]: an object with source and course_id is required.")
        for name in ("source", "course_id"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise RestoreRejected(f"items[{index}].{name}: a non-empty string is required.")
        pairs.append((item["course_id"].strip(), item["source"].strip()))
    targets = [course_id for course_id, _source in pairs]
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise RestoreRejected(f"items: each course may be restored once per request ({duplicates[0]} twice).")
    if uploaded is not None:
        unused = uploaded - {source for _course_id, source in pairs}
        if unused:
            raise RestoreRejected(f"file: {sorted(unused)[0]!r} is uploaded but no item names it as source.")
    return pairs


def target_key(course_id: str) -> CourseLocator | None:
    """The course key a restore may write: a run of a course (not a library, branch or version)."""
    try:
        key = CourseKey.from_string(course_id)
    except InvalidKeyError:
        return None
    if not isinstance(key, CourseLocator) or key.branch or key.version_guid or key.deprecated:
        return None
    return key


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
        item.object_name, item.error = _bucket_object(backend, user, source)
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


def backup_folder(course_id: str) -> str:
    return storage.object_name("backups", course_id) + "/"


def backup_object(course_id: str, version: str, suffix: str = ".tar.gz") -> tuple[str, str]:
    """The object of the course's (``suffix`` ".zip": the library's) own backup ``latest`` or
    ``<timestamp>``, or an error."""
    if version != "latest" and not re.fullmatch(_TIMESTAMP, version):
        return "", "Invalid source: backup:latest or backup:<timestamp like 20261123T193000Z> expected."
    folder = backup_folder(course_id)
    try:
        _folders, files = storage.get_storage().listdir(folder)
    except FileNotFoundError:
        files = []
    versions = sorted(
        name[: -len(suffix)] for name in files if re.fullmatch(_TIMESTAMP + re.escape(suffix), name)
    )
    if version == "latest" and versions:
        return f"{folder}{versions[-1]}{suffix}", ""
    if version in versions:
        return f"{folder}{version}{suffix}", ""
    return "", f"Source not found: the course has no backup {version}."


def _source_course(name: str) -> str | None:
    """The course (or library) an object of this app's bucket is an export or a backup of, or None."""
    prefix = re.escape(settings.EXPORTBULK_KEY_PREFIX)
    export = re.escape(settings.EXPORTBULK_EXPORT_KEY_TEMPLATE).replace(r"\{course_id\}", "(?P<course>.+)")
    backup = rf"backups/(?P<course>.+)/{_TIMESTAMP}\.(?:tar\.gz|zip)"
    for pattern in (backup, export):
        match = re.fullmatch(prefix + pattern, name)
        if match:
            return match["course"]
    return None


def bucket_source(source: str) -> tuple[str, str | None, str]:
    """A bucket key (with or without the key prefix): its object name, the course (or library) it
    is an export or a backup of (None: neither), or an error."""
    prefix = settings.EXPORTBULK_KEY_PREFIX
    name = source if source.startswith(prefix) else prefix + source
    try:
        storage.object_name(name[len(prefix) :])  # refuses names that escape the prefix
    except (ValueError, SuspiciousFileOperation):
        return "", None, "Invalid source: not an object name of this app's bucket."
    return name, _source_course(name), ""


def _bucket_object(backend: CourseBackend, user: User, source: str) -> tuple[str, str]:
    """A bucket key (with or without the key prefix), if it is an export or a backup the caller may read."""
    name, course_id, error = bucket_source(source)
    if error:
        return "", error
    source_key = target_key(course_id) if course_id else None
    if source_key is None:
        return "", "Invalid source: neither an export nor a backup of this app, nor an uploaded file."
    # A tarball holds its course's content: reading it takes what exporting it takes.
    if not backend.has_write_access(user, source_key, CoursePermission.EXPORT):
        return "", "Permission denied: you may not read the source course's tarballs."
    return name, ""


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
