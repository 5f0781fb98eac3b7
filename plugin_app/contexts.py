"""
Learning contexts: what a backup item may name besides a course, a v2 content library.

Each kind has its backend (courses: ``get_backend()``; libraries: ``get_library_backend()``) and
its own object format: a Studio tarball for a course, Learning Core's zip for a library. Backups,
their selection and their retention call these functions with the item's id (``course_id``, which
holds the library key for a library) and do not care which kind it is.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey

from plugin_app import storage
from plugin_app.backends import get_backend
from plugin_app.backends.base import CoursePermission
from plugin_app.backends.libraries import get_library_backend, is_library, library_key
from plugin_app.data import ItemStatus
from plugin_app.export import Digesting, Written, export_errors, write_course
from plugin_app.exports import PERMISSION_DENIED, authorable_courses
from plugin_app.exports import requested_item as requested_course
from plugin_app.models import BulkItem

if TYPE_CHECKING:
    from django.contrib.auth.models import User

LIBRARY_PERMISSION_DENIED = "Permission denied: you may not author this library."
INVALID_LIBRARY_KEY = "Invalid library key: lib:ORG:SLUG is expected."
LIBRARY_CONTENT_TYPE = "application/zip"
_CHUNK = 1024 * 1024


def invalid_key(context_id: str) -> str | None:
    """Why the id names neither a course nor a library (one sentence), or None."""
    if is_library(context_id):
        return None if library_key(context_id) else INVALID_LIBRARY_KEY
    try:
        CourseKey.from_string(context_id)
    except InvalidKeyError:
        return "Invalid course key."
    return None


def object_suffix(context_id: str) -> str:
    """The suffix of the context's backup objects: its format."""
    return ".zip" if is_library(context_id) else ".tar.gz"


def fingerprint(context_id: str) -> str:
    """A cheap digest that moves whenever the context's backup would; raises CourseNotFound
    (LibraryNotFound for a library)."""
    key = library_key(context_id)
    if key is not None:
        return get_library_backend().fingerprint(key)
    return get_backend().fingerprint(CourseKey.from_string(context_id))


def write(context_id: str, name: str, should_stop: Callable[[], bool] | None = None) -> Written:
    """Stream the context's backup into the storage name ``name``; raises ExportError (or
    storage.Stopped when ``should_stop`` says so, leaving no object)."""
    key = library_key(context_id)
    if key is None:
        return write_course(CourseKey.from_string(context_id), name, should_stop)
    with export_errors(key), get_library_backend().dumped(key) as path, path.open("rb") as source:
        with storage.open_writer(name, LIBRARY_CONTENT_TYPE, should_stop) as out:
            digesting = Digesting(out)
            shutil.copyfileobj(source, digesting, _CHUNK)
    return digesting.written()


def may_author(user: User, context_id: str) -> bool:
    """Whether the user may back up the course or library and read its backups (Studio's export
    permission on a course, edit rights on a library)."""
    key = library_key(context_id)
    if key is not None:
        return get_library_backend().may_author(user, key)
    return get_backend().has_write_access(user, CourseKey.from_string(context_id), CoursePermission.EXPORT)


def exists(context_id: str) -> bool:
    """Whether the course or library exists."""
    key = library_key(context_id)
    if key is not None:
        return get_library_backend().exists(key)
    return get_backend().course_exists(CourseKey.from_string(context_id))


def permission_denied(context_id: str) -> str:
    """What a caller who may not author the course or library is told."""
    return LIBRARY_PERMISSION_DENIED if is_library(context_id) else PERMISSION_DENIED


def requested_item(user: User, position: int, context_id: str) -> BulkItem:
    """The item of one requested course or library; refused ones fail at once, with their reason."""
    if not is_library(context_id):
        return requested_course(user, position, context_id, get_backend())
    item = BulkItem(position=position, course_id=context_id)
    key = library_key(context_id)
    backend = get_library_backend()
    if key is None:
        item.status, item.error = ItemStatus.FAILED, INVALID_LIBRARY_KEY
    elif not backend.may_author(user, key):  # first: a stranger learns nothing of whether it exists
        item.status, item.error = ItemStatus.FAILED, LIBRARY_PERMISSION_DENIED
    elif not backend.exists(key):
        item.status, item.error = ItemStatus.FAILED, "Library not found."
    return item


def authorable(user: User, org: str | None = None) -> list[str]:
    """The courses, then the libraries, the user may author: of one organization or all."""
    backend = get_library_backend()
    libraries = [
        summary.library_id
        for summary in backend.list_libraries()
        if (org is None or summary.org.lower() == org.lower())
        and (key := library_key(summary.library_id)) is not None
        and backend.may_author(user, key)
    ]
    return authorable_courses(user, org) + libraries
