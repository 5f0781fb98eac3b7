"""
The course backend: everything the app needs from wherever courses live.

The app never imports edx-platform directly; it talks to one of these. ``modulestore``
runs inside the LMS/CMS, ``olx_directory`` on a folder of OLX courses (standalone, tests).
"""

from __future__ import annotations

import abc
import hashlib
from contextlib import AbstractContextManager

from opaque_keys.edx.keys import CourseKey, UsageKey
from opaque_keys.edx.locator import AssetLocator

from plugin_app.data import AssetFile, ComponentSpec, CourseSummary, OlxTree


class CourseNotFound(Exception):
    """The course key is valid but no such course exists."""


class UnitNotFound(Exception):
    """The unit named by a usage key does not exist, or is not a unit of that course."""


class CourseBackend(abc.ABC):
    """Access to the courses of one deployment."""

    name: str = ""

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
    def has_write_access(self, user, course_key: CourseKey) -> bool:
        """Whether ``user`` may author the course (Studio write access)."""

    @abc.abstractmethod
    def export_olx(self, course_key: CourseKey) -> AbstractContextManager[OlxTree]:
        """The course as an OLX tree, valid until the context exits. Raises CourseNotFound."""

    @abc.abstractmethod
    def save_asset(self, course_key: CourseKey, asset: AssetFile) -> str:
        """Store (or replace) a course asset under ``studio_asset_name(asset.name)``, with
        ``asset.name`` as its display name; return its URL path (``/asset-v1:...``)."""

    @abc.abstractmethod
    def save_video_transcript(self, video_key: UsageKey, srt: bytes, user) -> dict:
        """Store an English SRT transcript for the video block ``video_key`` (which may not exist
        yet) as Studio's transcript upload does: in edxval, under the video's ``edx_video_id``
        (a new external video unless the block has one). Return the fields the video block gets:
        ``edx_video_id`` and ``transcripts``. Raises ValueError for a transcript that cannot be read.
        """

    @abc.abstractmethod
    def resolve_unit(self, course_key: CourseKey, unit: str, user) -> UsageKey:
        """The unit named by a usage key, or by an outline path ``Section / Subsection / Unit``.

        Missing parts of an outline path are created (published, with block ids derived from
        the path so that a second call finds them). Raises UnitNotFound for a usage key that
        does not name a unit of the course.
        """

    @abc.abstractmethod
    def create_component(self, unit_key: UsageKey, spec: ComponentSpec, user) -> UsageKey:
        """Create the component in the unit, or replace the one with the same block id."""

    @abc.abstractmethod
    def publish(self, usage_key: UsageKey, user) -> None:
        """Publish the block and its children."""


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
