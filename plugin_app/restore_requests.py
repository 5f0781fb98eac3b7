"""
What a restore request names, read and resolved at request time: its items (``parse_items``),
each target's course key, and each source as one object of the bucket (a backup by its version,
or an export or backup by its key, which the caller must be allowed to read).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from plugin_app import storage
from plugin_app.backends.base import CourseBackend, CoursePermission

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BACKUP_PREFIX = "backup:"
# Backup versions are named by their UTC time, "20261123T193000.123456Z" (the fraction optional).
_TIMESTAMP = r"\d{8}T\d{6}(?:\.\d{1,6})?Z"


class RestoreRejected(Exception):
    """A restore request that cannot start at all; the message names the field."""


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
    counts = Counter(course_id for course_id, _source in pairs)  # one pass: up to the limit's items
    duplicates = sorted(course_id for course_id, count in counts.items() if count > 1)
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


def bucket_object(backend: CourseBackend, user: User, source: str) -> tuple[str, str]:
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
