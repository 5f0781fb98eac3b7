"""
The course backend: everything the app needs from wherever courses live.

The app never imports edx-platform directly; it talks to one of these. ``modulestore``
runs inside the LMS/CMS, ``olx_directory`` on a folder of OLX courses (standalone, tests).
"""

from __future__ import annotations

import abc
import contextlib
import enum
import hashlib
import json
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opaque_keys.edx.keys import CourseKey, UsageKey
from opaque_keys.edx.locator import AssetLocator

from plugin_app.data import AssetFile, ComponentSpec, ContentVersions, CourseSummary, OlxTree

if TYPE_CHECKING:  # the model module needs the app registry; annotations only
    from django.contrib.auth.models import User


class CourseNotFound(Exception):
    """The course key is valid but no such course exists."""

    reason = "Course not found."  # what a caller is told (a library's says so)


class UnitNotFound(Exception):
    """The unit named by a usage key does not exist, or is not a unit of that course."""


class RestoreRefused(Exception):
    """A restore the backend will not apply, or the platform refused (then in Studio's own words): the
    message, safe to show, is the item's reason."""


class CoursePermission(enum.StrEnum):
    """What the caller does to a course, which decides the permission Studio checks for it."""

    EXPORT = "export"  # an export, a backup, or reading a course's tarballs
    IMPORT = "import"  # a restore
    UPLOAD = "upload"  # a bulk upload: files created and replaced


class CourseBackend(abc.ABC):
    """Access to the courses of one deployment."""

    name: str = ""
    # Names the fingerprint's make: a fingerprint of another scheme never equals one of this.
    fingerprint_scheme: str = ""

    @classmethod
    def from_settings(cls) -> CourseBackend:
        """The backend as the Django settings configure it."""
        return cls()

    @abc.abstractmethod
    def list_courses(self) -> list[CourseSummary]:
        """Every course, ordered by course id."""

    @abc.abstractmethod
    def course_exists(self, course_key: CourseKey) -> bool:
        """Whether the course exists."""

    @abc.abstractmethod
    def has_write_access(self, user: User, course_key: CourseKey, permission: CoursePermission) -> bool:
        """Whether ``user`` may do ``permission`` to the course (Studio write access, or where the
        platform decides it by openedx-authz, that permission)."""

    @abc.abstractmethod
    def export_olx(self, course_key: CourseKey) -> AbstractContextManager[OlxTree]:
        """The course as an OLX tree, valid until the context exits. Raises CourseNotFound."""

    @abc.abstractmethod
    def content_versions(self, course_keys: list[CourseKey]) -> dict[CourseKey, ContentVersions]:
        """What an export of each course would hold, from indexes, never a walk of the course
        tree; courses that do not exist are left out. Keys are the ones given."""

    def fingerprint(self, course_key: CourseKey) -> str:
        """A digest of everything an export of the course would hold, cheap to compute without
        exporting: it changes whenever the export's content would. Raises CourseNotFound.

        Made of ``content_versions``' digests, so that backups and the versions API read one truth.
        """
        versions = self.content_versions([course_key]).get(course_key)
        if versions is None:
            raise CourseNotFound(str(course_key))
        combined = hashlib.sha256(json.dumps(versions.digests, sort_keys=True).encode())
        return f"{self.fingerprint_scheme}:{combined.hexdigest()}"

    @abc.abstractmethod
    def save_asset(self, course_key: CourseKey, asset: AssetFile) -> str:
        """Store (or replace) a course asset under ``studio_asset_name(asset.name)``, with
        ``asset.name`` as its display name; return its URL path (``/asset-v1:...``)."""

    @abc.abstractmethod
    def save_video_transcript(self, video_key: UsageKey, srt: bytes, user: User) -> dict[str, Any]:
        """Store an English SRT transcript for the video block ``video_key`` (which may not exist
        yet) as Studio's transcript upload does: in edxval, under the video's ``edx_video_id``
        (a new external video unless the block has one). Return the fields the video block gets:
        ``edx_video_id`` and ``transcripts``. Raises ValueError for a transcript that cannot be read.
        """

    @abc.abstractmethod
    def resolve_unit(self, course_key: CourseKey, unit: str, user: User) -> UsageKey:
        """The unit named by a usage key, or by an outline path ``Section / Subsection / Unit``.

        Missing parts of an outline path are created (published, with block ids derived from
        the path so that a second call finds them). Raises UnitNotFound for a usage key that
        does not name a unit of the course.
        """

    @abc.abstractmethod
    def create_component(self, unit_key: UsageKey, spec: ComponentSpec, user: User) -> UsageKey:
        """Create the component in the unit, or replace the one with the same block id."""

    @abc.abstractmethod
    def publish(self, usage_key: UsageKey, user: User) -> None:
        """Publish the block and its children."""

    def batch(self, course_key: CourseKey) -> AbstractContextManager[object]:
        """Group several writes to one course: what they change is durable once the context exits.

        A backend whose course-level files grow with the course writes them once per batch
        here; by default each write is durable on its own.
        """
        return contextlib.nullcontext()

    # Restore ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def can_create_course(self, user: User, course_key: CourseKey) -> bool:
        """Whether ``user`` may create that course (Studio's course-creator right)."""

    @abc.abstractmethod
    def restore_course(
        self, course_key: CourseKey, course_dir: Path, source_key: CourseKey, user: User, token: str
    ) -> None:
        """Make the course what the unpacked OLX course ``course_dir`` (exported as ``source_key``)
        holds, creating it if missing. ``course_dir`` lies in ``restore_workspace(token)``.
        Raises RestoreRefused, having changed nothing, when the tree cannot become that course."""

    def restored_before(self, course_key: CourseKey, token: str) -> bool:
        """Whether an earlier attempt with this token finished restoring (then it cleans up)."""
        return False

    def staging_root(self) -> Path:
        """Where tarballs are unpacked; for an atomic swap, on the courses' own filesystem."""
        return Path(tempfile.gettempdir()) / "exportbulk-restore"

    def restore_workspace(self, token: str) -> Path:
        """A fresh, empty folder to unpack the tarball of restore attempt ``token`` into."""
        self.discard_workspace(token)
        folder = self.staging_root() / token / "unpacked"
        folder.mkdir(parents=True)
        return folder

    def discard_workspace(self, token: str) -> None:
        shutil.rmtree(self.staging_root() / token, ignore_errors=True)


# Outline levels from the course down, as OLX and the modulestore name their block types.
OUTLINE_CATEGORIES = ("chapter", "sequential", "vertical")


def outline_block_id(course_key: CourseKey, path: list[str]) -> str:
    """The block id of an outline part created for ``path`` (its titles from the section down).

    Derived from the course and the path so that a retried row finds the part it created.
    """
    digest = hashlib.sha1("\n".join([str(course_key), *path]).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest()[:32]


def studio_asset_name(file_name: str) -> str:
    """The name Studio stores an uploaded file under (the asset key's block id).

    As ``StaticContent.compute_location`` (edx-platform xmodule/contentstore/content.py): "/"
    becomes "_", then opaque-keys' ``AssetLocator.clean_keeping_underscores`` turns every
    character outside ``[\\w.%-]`` into "_": ``Week 1 (final).pdf`` is ``Week_1__final_.pdf``.
    """
    return AssetLocator.clean_keeping_underscores(file_name.replace("/", "_"))


def video_transcript_name(edx_video_id: str, language: str = "en") -> str:
    """The transcript file name Studio records for a video's edxval transcript
    (cms/djangoapps/contentstore/views/transcripts_ajax.py ``upload_transcripts``; edxval's
    ``create_transcript_file`` writes the exported file under the same name)."""
    return f"{edx_video_id}-{language}.srt"


def parse_outline_path(unit: str) -> list[str]:
    """``"Section / Subsection / Unit"`` as its three titles; ValueError if it is not one."""
    parts = [part.strip() for part in unit.split("/")]
    if len(parts) != 3 or not all(parts):
        raise ValueError("an outline path has three non-empty parts: Section / Subsection / Unit")
    return parts
