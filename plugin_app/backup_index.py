"""
The backup index (``BackupVersion`` rows) reconciled with the bucket, the source of truth.

The database only indexes the objects ``<prefix>backups/<course_id>/<stamp>.tar.gz`` (``.zip``
for a library): a fresh
database, or an older one restored from a dump, does not know some of them. Whenever a course's
versions are about to be read (the versions API; a backup run, once it holds the course), its
folder is listed and each object without a row gets one, with the size, sha256 and fingerprint
that its run's manifest (``backups/runs/*.json``) records: so change-awareness resumes from the
bucket's newest version. Manifests are read newest first, only as far as needed. An object that
no manifest lists (its run never finished) gets a row without fingerprint: the next backup of
the course exports it again, never the reverse. Rows whose object is gone are left as they are:
the readers check that an object is stored before trusting it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.db import IntegrityError

from plugin_app import storage
from plugin_app.models import BackupCourse, BackupVersion

log = logging.getLogger(__name__)

PREFIX = "backups"
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
# A course's tarball or a library's zip (Learning Core's), named by its UTC stamp.
_VERSION = re.compile(r"(?P<stamp>\d{8}T\d{6}\.\d{6}Z)\.(?:tar\.gz|zip)")


def folder(course_id: str) -> str:
    """The storage folder of the course's versions (with its trailing slash)."""
    return storage.object_name(PREFIX, course_id) + "/"


def reconcile(course_id: str) -> list[str]:
    """Record the course's stored versions that the database does not know; their storage
    names, oldest first (one LIST, and the manifests' GETs only when a version is unknown)."""
    stored = stored_versions(course_id)
    known = set(BackupVersion.objects.filter(name__in=stored).values_list("name", flat=True))
    unknown = [name for name in stored if name not in known]
    if unknown:
        try:
            course, _created = BackupCourse.objects.get_or_create(course_id=course_id)
        except IntegrityError:  # created meanwhile by a run or another reader
            course = BackupCourse.objects.get(course_id=course_id)
        entries = _manifest_entries(set(unknown))
        BackupVersion.objects.bulk_create(
            [_version(course, name, entries.get(name, {})) for name in unknown], ignore_conflicts=True
        )
    return stored


def reconcile_if_reachable(course_id: str) -> None:
    """``reconcile``, unless the bucket cannot be read now: a backup run then goes on with what
    the database knows (at worst the course is exported again), and its write reports the error."""
    try:
        reconcile(course_id)
    except (BotoCoreError, ClientError, OSError) as exc:
        log.warning("Could not read the backups of %s from the bucket: %r", course_id, exc)


def stored_versions(course_id: str) -> list[str]:
    """The storage names of the course's versions in the bucket (one LIST), oldest first."""
    base = folder(course_id)
    try:
        _folders, files = storage.get_storage().listdir(base)
    except FileNotFoundError:
        return []
    return sorted(base + name for name in files if _VERSION.fullmatch(name))


def _version(course: BackupCourse, name: str, entry: dict[str, Any]) -> BackupVersion:
    version = _VERSION.fullmatch(name.rsplit("/", 1)[1])
    assert version is not None  # listed by stored_versions
    stamp = version["stamp"]
    return BackupVersion(
        course=course,
        name=name,
        created=datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC),
        process_id=entry.get("processId", ""),
        fingerprint=entry.get("fingerprint", ""),
        size=entry["size"] if "size" in entry else storage.get_storage().size(name),
        sha256=entry.get("sha256", ""),
    )


def _manifest_entries(names: set[str]) -> dict[str, dict[str, Any]]:
    """The manifest entries (with their run's ``processId``) of those names that a run lists."""
    found: dict[str, dict[str, Any]] = {}
    runs = folder("runs")
    try:
        _folders, files = storage.get_storage().listdir(runs)
    except FileNotFoundError:
        files = []
    for manifest in sorted((name for name in files if name.endswith(".json")), reverse=True):
        for name, entry in _entries_of(runs + manifest).items():
            if name in names:
                found.setdefault(name, entry)
        if len(found) == len(names):
            break
    return found


@functools.lru_cache(maxsize=4)
def _entries_of(manifest: str) -> dict[str, dict[str, Any]]:
    """A run manifest's stored courses by key. Cached: a manifest is written once, at the end of
    its run, and a run over every course would otherwise be read once per course."""
    with storage.open_reader(manifest) as stream:
        body = json.load(stream)
    return {
        entry["key"]: {**entry, "processId": body.get("processId", "")}
        for entry in body.get("courses", [])
        if entry.get("key") and entry.get("fingerprint")
    }
