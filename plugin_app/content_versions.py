"""
The content versions API (``POST export/versions/``, the export anchor's): for each course, what an
export of it would hold, so that a caller can tell when its copy has gone stale without exporting.

The backend's ``content_versions`` answers it, the same method the backup fingerprints are made of.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from plugin_app.backends import get_backend
from plugin_app.backends.base import CoursePermission
from plugin_app.data import ContentVersions

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MAX_COURSES = 200


def course_versions(user: User, course_ids: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The versions of the courses the user may export, by requested id, and the requested ids
    that name no such course, in request order: unparseable ids, library keys, unknown courses
    and courses the user may not export (a stranger learns nothing of whether a course exists)."""
    backend = get_backend()
    keys: dict[str, CourseKey] = {}
    for course_id in dict.fromkeys(course_ids):
        try:
            key = CourseKey.from_string(course_id)
        except InvalidKeyError:
            continue
        # A library-v1 key parses as a CourseKey (and has a course index row), but is no course;
        # the access rule is export's.
        if isinstance(key, CourseLocator) and backend.has_write_access(user, key, CoursePermission.EXPORT):
            keys[course_id] = key
    found = backend.content_versions(list(keys.values()))
    versions = {course_id: as_json(found[key]) for course_id, key in keys.items() if key in found}
    missing = [course_id for course_id in dict.fromkeys(course_ids) if course_id not in versions]
    return versions, missing


def as_json(versions: ContentVersions) -> dict[str, Any]:
    """One course's entry, in the anchor's shape (times ISO 8601 in UTC)."""
    assets, transcripts = versions.static_assets, versions.transcripts
    return {
        "published_version": versions.published_version,
        "static_assets": {
            "count": assets.count,
            "latest_upload": _iso(assets.latest_upload),
            "latest_asset": assets.latest_asset,
        },
        "transcripts": {"count": transcripts.count, "latest_modified": _iso(transcripts.latest_modified)},
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None
