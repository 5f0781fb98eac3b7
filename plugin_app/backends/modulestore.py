"""
The course backend inside edx-platform (CMS): the modulestore, the contentstore and Studio's permissions.

Each method mirrors what Studio itself does (the edx-platform function is named in its docstring).
edx-platform is imported inside the methods only, so that this module imports anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey, UsageKey
from opaque_keys.edx.locator import LibraryLocator

from plugin_app.backends import studio_access, studio_import
from plugin_app.backends.base import (
    OUTLINE_CATEGORIES,
    CourseBackend,
    CourseNotFound,
    CoursePermission,
    UnitNotFound,
    outline_block_id,
    parse_outline_path,
    video_transcript_name,
)
from plugin_app.backends.modulestore_versions import modulestore_versions
from plugin_app.data import AssetFile, ComponentSpec, ContentVersions, CourseSummary, OlxTree

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)
# A new video block plays the demo YouTube video unless told otherwise (VideoFields.youtube_id_1_0).
_VIDEO_DEFAULTS: dict[str, Any] = {"youtube_id_1_0": "", "download_video": True}
_CHUNK = 1024 * 1024
_SVG = "image/svg+xml"


def _store() -> Any:
    from xmodule.modulestore.django import modulestore

    return modulestore()


def _transcripts_utils() -> Any:
    """Where the platform keeps ``Transcript``, ``clean_video_id`` and their exception: moved from
    xmodule/video_block/ to openedx/core/djangoapps/video_config/ (transcripts_ajax.py imports it
    from there)."""
    try:
        from openedx.core.djangoapps.video_config import transcripts_utils
    except ImportError:
        from xmodule.video_block import transcripts_utils
    return transcripts_utils


def _courselike(key: CourseKey) -> Any:
    """The course (or legacy library) root block, or None; as Studio's ``export_olx`` task loads it."""
    if isinstance(key, LibraryLocator):
        return _store().get_library(key)
    return _store().get_course(key)


def _child_titled(parent: Any, category: str, title: str) -> Any:
    return next(
        (c for c in parent.get_children() if c.location.block_type == category and c.display_name == title),
        None,
    )


def _utc_text(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class ModulestoreBackend(CourseBackend):
    """Courses of the edx-platform this app runs in."""

    name = "modulestore"
    fingerprint_scheme = "modulestore-v2"

    def list_courses(self) -> list[CourseSummary]:
        """Every course of the course overviews, ``CourseOverview.get_all_courses()``.

        Studio's own listing (cms/djangoapps/contentstore/views/course.py
        ``_accessible_courses_summary_iter``) reads the overviews only when it filters by org
        (``get_all_courses(orgs=[org])``, which matches the org case-insensitively, as
        ``api.authorable_courses`` does); unfiltered, it asks the modulestore for its course
        summaries. The overviews hold every published course, and need no modulestore query.

        An overview outlives its course (a deleted course keeps its row until someone removes
        it): each is cross-checked against the course index (``SplitModulestoreCourseIndex``, one
        query of its ids), so a stale row never fails a run over every course.
        """
        from common.djangoapps.split_modulestore_django.models import SplitModulestoreCourseIndex
        from openedx.core.djangoapps.content.course_overviews.models import CourseOverview

        indexed = {
            str(key) for key in SplitModulestoreCourseIndex.objects.values_list("course_id", flat=True)
        }
        overviews = list(CourseOverview.get_all_courses())
        stale = sorted(str(overview.id) for overview in overviews if str(overview.id) not in indexed)
        if stale:
            log.warning("Course overviews without a course, left out: %s", ", ".join(stale))
        summaries = [
            CourseSummary(
                course_id=str(overview.id),
                display_name=overview.display_name_with_default,
                org=overview.id.org,
                number=overview.id.course,
                run=overview.id.run,
                start=_utc_text(overview.start),
                end=_utc_text(overview.end),
                self_paced=overview.self_paced,
            )
            for overview in overviews
            if str(overview.id) in indexed
        ]
        return sorted(summaries, key=lambda summary: summary.course_id)

    def course_exists(self, course_key: CourseKey) -> bool:
        """``has_course`` reads the course index only (xmodule/modulestore/mixed.py); a legacy
        library is looked up as Studio's export task does."""
        if isinstance(course_key, LibraryLocator):
            return _courselike(course_key) is not None
        return bool(_store().has_course(course_key))

    def has_write_access(self, user: User, course_key: CourseKey, permission: CoursePermission) -> bool:
        """Studio's own check for the same action (``studio_access.user_may``)."""
        return studio_access.user_may(user, course_key, permission)

    @contextlib.contextmanager
    def export_olx(self, course_key: CourseKey) -> Iterator[OlxTree]:
        """Studio's export into a temporary directory, named after the root block's url_name
        (cms/djangoapps/contentstore/tasks.py ``create_export_tarball``); removed on exit."""
        from xmodule.contentstore.django import contentstore
        from xmodule.modulestore.xml_exporter import export_course_to_xml, export_library_to_xml

        root_block = _courselike(course_key)
        if root_block is None:
            raise CourseNotFound(str(course_key))
        name = root_block.url_name
        root_dir = tempfile.mkdtemp(prefix="exportbulk-")  # a str: the exporter joins paths with "+"
        try:
            if isinstance(course_key, LibraryLocator):
                export_library_to_xml(_store(), contentstore(), course_key, root_dir, name)
            else:
                export_course_to_xml(_store(), contentstore(), root_block.id, root_dir, name)
            yield OlxTree(path=Path(root_dir) / name, root_name=name)
        finally:
            shutil.rmtree(root_dir, ignore_errors=True)

    def content_versions(self, course_keys: list[CourseKey]) -> dict[CourseKey, ContentVersions]:
        """Lookups in indexes, batched for all the courses, never a walk of a course (see
        ``modulestore_versions``): what ``export_course_to_xml`` writes, source by source."""
        return modulestore_versions(course_keys)

    def save_asset(self, course_key: CourseKey, asset: AssetFile) -> str:
        """Studio's upload (cms/djangoapps/contentstore/asset_storage_handlers.py
        ``update_course_run_asset``), with the lock set in the same save instead of a later
        ``set_attr``, so a locked asset is never public. ``compute_location`` names the asset
        as Studio does (``studio_asset_name``); the file's own name is its display name.

        The stream is spooled to a temporary file, as Django does with a large upload: GridFS
        then reads it in chunks and the thumbnail maker reads it by path. An SVG is the
        exception: ``generate_thumbnail`` stores the SVG itself as its thumbnail and reads a
        path in text mode, which fails; it is given the bytes and no path, as Studio gives a
        small (in-memory) upload (``_get_file_content_and_path``).
        """
        from openedx.core.djangoapps.contentserver.caching import del_cached_content
        from xmodule.contentstore.content import StaticContent
        from xmodule.contentstore.django import contentstore

        store = contentstore()
        location = StaticContent.compute_location(course_key, asset.name)
        with tempfile.NamedTemporaryFile(prefix="exportbulk-asset-") as spool:
            shutil.copyfileobj(asset.stream, spool, _CHUNK)
            size = spool.tell()
            limit_mb = getattr(settings, "MAX_ASSET_UPLOAD_FILE_SIZE_IN_MB", None)
            if limit_mb and size > limit_mb * 1000**2:
                raise ValueError(f"File {asset.name} exceeds maximum size of {limit_mb} MB.")
            spool.flush()
            spool.seek(0)
            data: bytes | Iterator[bytes]
            path: str | None
            if asset.content_type == _SVG:
                data, path = spool.read(), None
            else:
                data, path = iter(lambda: spool.read(_CHUNK), b""), spool.name
            content = StaticContent(
                location, asset.name, asset.content_type, data, length=size, locked=asset.locked
            )
            thumbnail, thumbnail_location = store.generate_thumbnail(content, tempfile_path=path)
            del_cached_content(thumbnail_location)
            if thumbnail is not None:
                content.thumbnail_location = thumbnail_location
            store.save(content)
        del_cached_content(location)
        return StaticContent.serialize_asset_key_with_slash(location)

    def save_video_transcript(self, video_key: UsageKey, srt: bytes, user: User) -> dict[str, Any]:
        """Studio's transcript upload (cms/djangoapps/contentstore/views/transcripts_ajax.py
        ``upload_transcripts``): the video's edxval id, else a new external video; the SRT as
        SJSON in edxval with the custom provider; the block names ``<edx_video_id>-en.srt``.

        Not a contentstore asset named in ``transcripts``: for English the LMS looks up the
        sub and YouTube ids instead (``get_transcript_from_contentstore``), so learners would
        see no captions.
        """
        from cms.djangoapps.contentstore.video_storage_handlers import TranscriptProvider
        from django.core.files.base import ContentFile
        from edxval.api import create_external_video, create_or_update_video_transcript

        transcripts_utils = _transcripts_utils()
        transcript = transcripts_utils.Transcript
        try:  # before any video is made: a bad file leaves no stray external video in edxval
            sjson = transcript.convert(
                content=srt.decode("utf-8"), input_format=transcript.SRT, output_format=transcript.SJSON
            ).encode()
        except (transcripts_utils.TranscriptsGenerationException, UnicodeDecodeError) as exc:
            raise ValueError("There is a problem with this transcript file (not a UTF-8 SRT).") from exc
        store = _store()
        existing = store.get_item(video_key).edx_video_id if store.has_item(video_key) else None
        edx_video_id = transcripts_utils.clean_video_id(existing) or create_external_video(
            display_name="external video"
        )
        created = create_or_update_video_transcript(
            video_id=edx_video_id,
            language_code="en",
            metadata={
                "provider": TranscriptProvider.CUSTOM,
                "file_format": transcript.SJSON,
                "language_code": "en",
            },
            file_data=ContentFile(sjson),
        )
        if created is None:
            raise ValueError(f"edxval has no video {edx_video_id}.")
        return {"edx_video_id": edx_video_id, "transcripts": {"en": video_transcript_name(edx_video_id)}}

    def resolve_unit(self, course_key: CourseKey, unit: str, user: User) -> UsageKey:
        """A unit by usage key (mapped into the course: a key of another run names the same unit,
        as after a rerun), or by outline path."""
        try:
            usage_key = UsageKey.from_string(unit)
        except InvalidKeyError:
            return self._ensure_outline(course_key, parse_outline_path(unit), user)
        if usage_key.block_type == "vertical":
            usage_key = usage_key.map_into_course(course_key)
            if _store().has_item(usage_key):
                return usage_key
        raise UnitNotFound(f"{unit} is not a unit of {course_key}")

    def _ensure_outline(self, course_key: CourseKey, titles: list[str], user: User) -> UsageKey:
        """Find or create each level by title, as Studio's ``create_xblock`` creates one
        (cms/djangoapps/contentstore/xblock_storage_handlers/create_xblock.py); then publish the
        new part (split auto-publishes sections and subsections, not units)."""
        store = _store()
        with store.bulk_operations(course_key):
            parent = store.get_course(course_key)
            if parent is None:
                raise CourseNotFound(str(course_key))
            created = None
            for depth, (category, title) in enumerate(zip(OUTLINE_CATEGORIES, titles, strict=True)):
                block = _child_titled(parent, category, title)
                if block is None:
                    block_id = outline_block_id(course_key, titles[: depth + 1])
                    key = course_key.make_usage_key(category, block_id)
                    if store.has_item(key):  # made by an earlier try, renamed in Studio since
                        block = store.get_item(key)
                    else:
                        block = store.create_child(
                            user.id,
                            parent.location,
                            category,
                            block_id=block_id,
                            fields={"display_name": title},
                        )
                        created = created or block.location
                parent = block
            if created is not None:
                store.publish(created, user.id)
        return parent.location

    def create_component(self, unit_key: UsageKey, spec: ComponentSpec, user: User) -> UsageKey:
        """``create_child`` with the caller's block id, as Studio's ``create_xblock`` does with a
        random one; a block already there (a retried row) is updated as Studio's ``_save_xblock``
        updates one (xblock_storage_handlers/view_handlers.py)."""
        store = _store()
        fields = {
            **(_VIDEO_DEFAULTS if spec.block_type == "video" else {}),
            "display_name": spec.display_name,
            **spec.fields,
        }
        usage_key = unit_key.course_key.make_usage_key(spec.block_type, spec.block_id)
        with store.bulk_operations(unit_key.course_key):
            if not store.has_item(unit_key):
                raise UnitNotFound(str(unit_key))
            if store.has_item(usage_key):
                block = store.get_item(usage_key)
                for field_name, value in fields.items():
                    setattr(block, field_name, value)
                store.update_item(block, user.id)
            else:
                store.create_child(user.id, unit_key, spec.block_type, block_id=spec.block_id, fields=fields)
        return usage_key

    def publish(self, usage_key: UsageKey, user: User) -> None:
        """As Studio's "make_public" (xblock_storage_handlers/view_handlers.py ``_save_xblock``)."""
        _store().publish(usage_key, user.id)

    def can_create_course(self, user: User, course_key: CourseKey) -> bool:
        """Studio's rule for creating a course: ``is_content_creator(user, org)``
        (common/djangoapps/student/auth.py: the CourseCreatorRole, which global staff hold, or the
        organization's OrgContentCreatorRole), as ``_create_or_rerun_course`` checks it
        (cms/djangoapps/contentstore/views/course.py)."""
        from common.djangoapps.student.auth import is_content_creator

        return bool(is_content_creator(user, course_key.org))

    def staging_root(self) -> Path:
        """Studio unpacks imports under ``GITHUB_REPO_ROOT`` (``import_olx``); so do we."""
        data_root = getattr(settings, "GITHUB_REPO_ROOT", None)
        return Path(data_root) / "exportbulk-restore" if data_root else super().staging_root()

    def restore_course(
        self, course_key: CourseKey, course_dir: Path, source_key: CourseKey, user: User, token: str
    ) -> None:
        """Studio's import task, ``import_olx`` (cms/djangoapps/contentstore/tasks.py): a missing
        course is created first as Studio's course creation does (``studio_import.create_course``);
        then ``import_course_from_xml`` (xmodule/modulestore/xml_importer.py) with ``target_id``
        and the static content store, which runs inside the store's ``bulk_operations(target_id)``
        (``ImportManager.run_imports``) and remaps every key of the tarball's course to the
        target, with what ``import_olx`` does around it (``studio_import.around_import``).
        Raises RestoreRefused with Studio's message when the platform refuses."""
        from xmodule.contentstore.django import contentstore
        from xmodule.modulestore.xml_importer import import_course_from_xml

        store = _store()
        if not store.has_course(course_key):
            studio_import.create_course(user, course_key)
        with studio_import.around_import(store, user, course_key):
            import_course_from_xml(
                store,
                user.id,
                str(course_dir.parent),
                [course_dir.name],
                load_error_blocks=False,
                static_content_store=contentstore(),
                target_id=course_key,
                verbose=True,
            )
        self.discard_workspace(token)
