"""
Restoring v2 content libraries from their backups (Learning Core's zip), as items of a restore.

An item whose target (``course_id``) is a library key is planned and run here; everything else
about the process (request, status, report, cleanup) is the restore kind's (``restores``).

At request time the target is checked (the caller may edit it, or create it when it does not
exist) and the source resolved: an uploaded file, ``backup:latest`` / ``backup:<stamp>`` of the
library itself, or a bucket key of a library backup the caller may read. In the worker, every
check runs before anything is written (``library_checks``, then the target's state); the archive
is then loaded under a staging key and becomes the library in the same transaction, so that a
failure leaves the old library whole. A dry run stops before the load.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import transaction

from plugin_app import restores, storage
from plugin_app.backends import learning_core
from plugin_app.backends.libraries import (
    LibraryBackend,
    get_library_backend,
    is_library,
    library_key,
)
from plugin_app.contexts import INVALID_LIBRARY_KEY
from plugin_app.library_checks import check_library_zip
from plugin_app.restore_requests import BACKUP_PREFIX, backup_object, bucket_source
from plugin_app.restores import FAILED, RESTORED, WOULD_RESTORE, PlannedItem, Restored

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from opaque_keys.edx.locator import LibraryLocatorV2

PERMISSION_DENIED = "Permission denied: you may not edit this library, nor create it."
_CHUNK = 1024 * 1024


def may_write(backend: LibraryBackend, user: User, key: LibraryLocatorV2) -> bool:
    """Edit rights on the library, or (for a library that does not exist) the right to create it."""
    if backend.may_author(user, key):
        return True
    return backend.may_create(user, key) and not backend.exists(key)


def plan_one(user: User, course_id: str, source: str, uploads: dict[str, str]) -> PlannedItem:
    """One requested library restore, checked and its source resolved; ``error`` set: refused."""
    item = PlannedItem(course_id, source)
    key = library_key(course_id)
    if key is None:
        item.error = INVALID_LIBRARY_KEY
        return item
    backend = get_library_backend()
    if not may_write(backend, user, key):
        item.error = PERMISSION_DENIED  # before anything that depends on the library existing
        return item
    item.existed = backend.exists(key)
    if source in uploads:
        item.object_name = uploads[source]
    elif source.startswith(BACKUP_PREFIX):
        item.object_name, item.error = backup_object(course_id, source[len(BACKUP_PREFIX) :], ".zip")
    else:
        item.object_name, item.error = _bucket_object(backend, user, source)
    return item


def _bucket_object(backend: LibraryBackend, user: User, source: str) -> tuple[str, str]:
    """A bucket key, if it is a backup of a library the caller may read (edit)."""
    name, source_id, error = bucket_source(source)
    if error:
        return "", error
    source_key = library_key(source_id) if source_id and name.endswith(".zip") else None
    if source_key is None:
        return "", "Invalid source: not a library backup of this app (backups/<library key>/<stamp>.zip)."
    # A backup holds its library's content: reading it takes what editing the library takes.
    if not backend.may_author(user, source_key):
        return "", "Permission denied: you may not read the source library's backups."
    return name, ""


def restore_one(
    item_id: str, course_id: str, object_name: str, user: User, options: dict[str, Any], existed: bool = True
) -> Restored:
    """Check and (unless a dry run) load one library backup into the library ``course_id``.

    Storage errors other than a missing object propagate, for the caller to retry. ``existed``:
    whether the library existed when the request's permissions were checked.
    """
    backend = get_library_backend()
    key = library_key(course_id)
    assert key is not None  # checked at request time
    with tempfile.TemporaryDirectory(prefix="exportbulk-library-") as folder:
        archive = Path(folder) / "library.zip"
        try:
            with storage.open_reader(object_name) as stream, archive.open("wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
        except FileNotFoundError:
            return Restored(FAILED, "Source not found: the object is not in the bucket (any more).")
        problems = check_library_zip(archive)
        exists = backend.exists(key)
        if exists and not existed and not backend.may_author(user, key):
            return Restored(FAILED, PERMISSION_DENIED)  # created by someone else since the request
        if exists and not options.get("overwrite"):
            problems.append("The library exists: set overwrite to replace it.")
        if not exists and (problem := backend.create_problem(key)):
            problems.append(problem)
        staging = learning_core.staging_ref(item_id)
        if learning_core.package_id(staging) is not None:
            problems.append(f"The staging key {staging!r} is taken by another learning package.")
        if problems:
            return Restored(FAILED, " ".join(problems), [])
        if options.get("dry_run"):
            return Restored(WOULD_RESTORE, findings=[])
        try:
            with transaction.atomic():  # loaded and swapped in together, or not at all
                staged = learning_core.load(archive, staging, user)
                if exists:
                    backend.swap(key, staged, item_id)
                else:
                    backend.create(key, staged, user)
        except learning_core.LoadFailed as exc:
            return Restored(FAILED, str(exc), [])
    return Restored(RESTORED, findings=[])


# Registered with the restore kind by the app's ``ready``.
CONTEXT = restores.ContextKind(is_library, plan_one, restore_one)
