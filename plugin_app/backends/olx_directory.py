"""
Courses kept as OLX directories in a folder: one directory per course, ``course.xml`` at its root.

The layout is the one Studio's export writes: ``course.xml`` points at ``course/<run>.xml``;
blocks live in ``<type>/<url_name>.xml`` (html bodies in ``html/<url_name>.html``); unpublished
units live under ``drafts/`` with ``parent_url`` and ``index_in_children_list``; static files in
``static/`` with their metadata (``locked`` included) in ``policies/assets.json``.

The course folder's files, asset policy, batches and lock are ``olx_course``'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from django.conf import settings
from django.contrib.auth.models import Group
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey, UsageKey

from plugin_app.backends import olx_restore
from plugin_app.backends.base import (
    OUTLINE_CATEGORIES,
    CourseBackend,
    CourseNotFound,
    CoursePermission,
    UnitNotFound,
    outline_block_id,
    parse_outline_path,
    studio_asset_name,
    video_transcript_name,
)
from plugin_app.backends.olx_course import (
    AssetPolicy,
    Batch,
    Course,
    course_folders,
    held_batches,
    read_xml,
    unlink_if_there,
    write_atomic,
    write_xml,
)
from plugin_app.backends.olx_versions import olx_versions
from plugin_app.data import AssetFile, ComponentSpec, ContentVersions, CourseSummary, OlxTree
from plugin_app.files import atomic_file
from plugin_app.fingerprint import FileDigests
from plugin_app.olx_checks import NotACourse, read_identity

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

_DRAFT_ATTRS = ("parent_url", "index_in_children_list")


def author_group_name(course_key: CourseKey) -> str:
    """The Django group whose members may author the course (besides staff)."""
    return f"course_authors:{course_key}"


class OlxDirectoryBackend(olx_restore.OlxRestoreMixin, CourseBackend):
    """Courses in ``root``: each sub-directory holding a ``course.xml`` is a course."""

    name = "olx_directory"
    fingerprint_scheme = "olx-sha256-v2"

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._index: dict[CourseKey, Course] = {}
        self._ambiguous: set[CourseKey] = set()
        self._index_stamp: tuple[tuple[str, int], ...] | None = None
        self._digests = FileDigests()

    @classmethod
    def from_settings(cls) -> OlxDirectoryBackend:
        return cls(settings.EXPORTBULK_OLX_ROOT)

    # Course discovery -------------------------------------------------------------------------

    def _courses(self) -> dict[CourseKey, Course]:
        """The course index, rebuilt when a course directory is added, removed or renamed.

        A folder whose course.xml names no loadable course is left out, and logged: one broken
        folder must not break the list, ``all`` or the scheduled backup for every course. A key
        that two folders claim is served by neither, and logged: whichever won would be chosen
        by folder names, and so by whoever named a folder; an operator must settle it.
        """
        stamp = course_folders(self.root)
        if stamp != self._index_stamp:
            claims: dict[CourseKey, list[Course]] = {}
            for path in (self.root / name for name, _ in stamp):
                try:
                    identity = read_identity(path)
                except NotACourse as exc:
                    log.error("OLX folder %s is not served: %s.", path.name, exc)
                    continue
                claims.setdefault(identity.key, []).append(Course(path, identity.key, identity.url_name))
            ambiguous = {key: courses for key, courses in claims.items() if len(courses) > 1}
            for key, courses in ambiguous.items():
                names = ", ".join(course.path.name for course in courses)
                log.error("Course %s is not served: the OLX folders %s all claim it.", key, names)
            self._index = {key: courses[0] for key, courses in claims.items() if key not in ambiguous}
            self._ambiguous, self._index_stamp = set(ambiguous), stamp
        return self._index

    def _held(self, course_key: CourseKey) -> Course | None:
        """The course this thread holds in a batch: every write of a batch goes to the folder it
        locked, and needs no look at the others."""
        key = olx_restore.unbranched(course_key)
        return next((batch.course for batch in held_batches().values() if batch.course.key == key), None)

    def ambiguous(self, course_key: CourseKey) -> bool:
        """Whether several folders claim the course (then none serves it)."""
        self._courses()
        return olx_restore.unbranched(course_key) in self._ambiguous

    def _course(self, course_key: CourseKey) -> Course:
        if held := self._held(course_key):
            return held
        try:
            return self._courses()[olx_restore.unbranched(course_key)]
        except KeyError:
            raise CourseNotFound(str(course_key)) from None

    def list_courses(self) -> list[CourseSummary]:
        summaries = []
        for key, course in sorted(self._courses().items(), key=lambda item: str(item[0])):
            try:
                fields = course.settings()
            except (OSError, ValueError, TypeError, AttributeError, DefusedXmlException) as exc:
                # Listed all the same (it can still be exported and backed up), by its key.
                log.warning("Course %s: its settings cannot be read (%r).", key, exc)
                fields = {}
            summaries.append(
                CourseSummary(
                    course_id=str(key),
                    display_name=str(fields.get("display_name", key)),
                    org=key.org or "",  # never empty: the index holds complete keys only
                    number=key.course or "",
                    run=key.run or "",
                    start=fields.get("start"),
                    end=fields.get("end"),
                    self_paced=fields.get("self_paced") in (True, "true"),
                )
            )
        return summaries

    def course_exists(self, course_key: CourseKey) -> bool:
        return bool(self._held(course_key)) or olx_restore.unbranched(course_key) in self._courses()

    def has_write_access(self, user: User, course_key: CourseKey, permission: CoursePermission) -> bool:
        """Standalone has no per-action roles: the course's author group (or staff) may do anything."""
        if not (user and user.is_active):
            return False
        if user.is_staff:
            return True
        name = author_group_name(course_key)
        # Compared here too: MySQL's default collations match names whatever their case, and
        # course keys are case-sensitive (the group of course-v1:a+b+c is not course-v1:A+B+C's).
        return name in Group.objects.filter(user=user, name=name).values_list("name", flat=True)

    def can_create_course(self, user: User, course_key: CourseKey) -> bool:
        """Standalone has no course-creator role: staff create courses."""
        return bool(user and user.is_active and user.is_staff)

    # Export -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def export_olx(self, course_key: CourseKey) -> Iterator[OlxTree]:
        course = self._course(course_key)
        with course.locked(exclusive=False):
            yield OlxTree(path=course.path, root_name=course.url_name)

    def content_versions(self, course_keys: list[CourseKey]) -> dict[CourseKey, ContentVersions]:
        """One pass over each course's file metadata (``plugin_app.fingerprint``), under the same
        shared lock as an export, so a bulk upload is never seen half-written; see ``olx_versions``."""
        courses = self._courses()
        found = {}
        for key in course_keys:
            course = courses.get(olx_restore.unbranched(key))
            if course is not None:
                with course.locked(exclusive=False):
                    found[key] = olx_versions(course.path, course.url_name, course.key, self._digests)
        return found

    # Content ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self, course_key: CourseKey) -> Iterator[None]:
        course = self._course(course_key)
        if course.path in held_batches():
            yield
            return
        with course.locked(exclusive=True):
            batch = held_batches()[course.path] = Batch(course)
            try:
                yield
                batch.save()
            finally:
                del held_batches()[course.path]

    def save_asset(self, course_key: CourseKey, asset: AssetFile) -> str:
        """As a Studio export lays an uploaded asset out (xmodule/contentstore/mongo.py
        ``export`` and ``export_all_for_course``): the file under its display name in
        ``static/``, its attributes in ``policies/assets.json`` under the asset key's block id
        (``studio_asset_name``), which is also what an import computes from the file name."""
        course = self._course(course_key)
        name = studio_asset_name(asset.name)
        asset_key = course_key.make_asset_key("asset", name)
        # The export escapes "/" and "\\" in the display name (mongo.py ``export``).
        file_name = asset.name.replace("/", "_").replace("\\", "_")
        with course.locked(exclusive=True):
            with atomic_file(course.path / "static" / file_name) as out:
                shutil.copyfileobj(asset.stream, out, 1024 * 1024)
            batch = held_batches().get(course.path)
            policy = batch.policy if batch else AssetPolicy(course.path)
            replaced = policy.get(name).get("displayname")
            if replaced and replaced != file_name:  # the same asset, uploaded under another name
                (course.path / "static" / replaced).unlink(missing_ok=True)
            policy.set(
                name,
                {
                    "contentType": asset.content_type,
                    "content_son": {
                        "category": "asset",
                        "course": course_key.course,
                        "name": name,
                        "org": course_key.org,
                        "revision": None,
                        "run": course_key.run,
                        "tag": "c4x",
                    },
                    "displayname": asset.name,
                    "filename": str(asset_key),
                    "import_path": None,
                    "locked": asset.locked,
                    "thumbnail_location": None,
                },
            )
            if batch is None:
                policy.save()
        return f"/{asset_key}"

    def save_video_transcript(self, video_key: UsageKey, srt: bytes, user: User) -> dict[str, Any]:
        """As a Studio export of a video with an edxval transcript has it: the SRT in
        ``static/<edx_video_id>-en.srt`` (edxval ``create_transcript_file``, outside the
        asset policy). The video keeps its ``edx_video_id`` on a retry."""
        course = self._course(video_key.course_key)
        try:
            srt.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("There is a problem with this transcript file (not a UTF-8 SRT).") from exc
        with course.locked(exclusive=True):
            edx_video_id = next(
                (
                    read_xml(path).get("edx_video_id", "")
                    for draft in (False, True)
                    if (path := course.block_file("video", video_key.block_id, draft)).exists()
                ),
                "",
            ) or str(uuid.uuid4())
            name = video_transcript_name(edx_video_id)
            write_atomic(course.path / "static" / name, srt)
        return {"edx_video_id": edx_video_id, "transcripts": {"en": name}}

    def resolve_unit(self, course_key: CourseKey, unit: str, user: User) -> UsageKey:
        course = self._course(course_key)
        try:
            usage_key = UsageKey.from_string(unit)
        except InvalidKeyError:
            return self._ensure_outline(course, parse_outline_path(unit))
        usage_key = usage_key.map_into_course(course.key)
        exists = any(
            course.block_file("vertical", usage_key.block_id, draft).exists() for draft in (False, True)
        )
        if usage_key.block_type != "vertical" or usage_key.course_key != course.key or not exists:
            raise UnitNotFound(f"{unit} is not a unit of {course_key}")
        return usage_key

    def _ensure_outline(self, course: Course, titles: list[str]) -> UsageKey:
        batch = held_batches().get(course.path)
        if batch and tuple(titles) in batch.units:  # the batch holds the course: the outline is as it left it
            return batch.units[tuple(titles)]
        with course.locked(exclusive=True):
            parent_path = course.root_file()
            for depth, (block_type, title) in enumerate(zip(OUTLINE_CATEGORIES, titles, strict=True)):
                block_id = course.find_child(read_xml(parent_path), block_type, title)
                if block_id is None:
                    block_id = outline_block_id(course.key, titles[: depth + 1])
                    path = course.block_file(block_type, block_id)
                    if not path.exists():
                        write_xml(path, ElementTree.Element(block_type, {"display_name": title}))
                    course.add_pointer(parent_path, block_type, block_id)
                parent_path = course.block_file(block_type, block_id)
        assert block_id is not None  # the loop ran, down to the unit
        unit_key = course.usage_key("vertical", block_id)
        if batch:
            batch.units[tuple(titles)] = unit_key
        return unit_key

    def create_component(self, unit_key: UsageKey, spec: ComponentSpec, user: User) -> UsageKey:
        course = self._course(unit_key.course_key)
        with course.locked(exclusive=True):
            draft = not course.block_file("vertical", unit_key.block_id).exists()
            unit_path = course.block_file("vertical", unit_key.block_id, draft)
            if not unit_path.exists():
                raise UnitNotFound(str(unit_key))
            element = _component_element(spec)
            if spec.block_type == "html":
                html_path = course.path / ("drafts" if draft else "") / "html" / f"{spec.block_id}.html"
                write_atomic(html_path, spec.fields.get("data", "").encode("utf-8"))
            write_xml(course.block_file(spec.block_type, spec.block_id, draft), element)
            course.add_pointer(unit_path, spec.block_type, spec.block_id)
        return course.usage_key(spec.block_type, spec.block_id)

    def publish(self, usage_key: UsageKey, user: User) -> None:
        """Move a draft unit and its draft children into the published tree."""
        course = self._course(usage_key.course_key)
        with course.locked(exclusive=True):
            draft_path = course.block_file(usage_key.block_type, usage_key.block_id, draft=True)
            if not draft_path.exists():
                return  # already published: blocks in the tree are the published version
            unit = read_xml(draft_path)
            parent_key = UsageKey.from_string(unit.get("parent_url", "")).map_into_course(course.key)
            index = int(unit.get("index_in_children_list", "0"))
            for attr in _DRAFT_ATTRS:
                unit.attrib.pop(attr, None)
            for child in unit:
                self._publish_draft_file(course, child.tag, child.get("url_name", ""))
            write_xml(course.block_file(usage_key.block_type, usage_key.block_id), unit)
            unlink_if_there(draft_path)
            parent_path = course.block_file(parent_key.block_type, parent_key.block_id)
            course.add_pointer(parent_path, usage_key.block_type, usage_key.block_id, index)

    @staticmethod
    def _publish_draft_file(course: Course, block_type: str, block_id: str) -> None:
        suffixes = (".xml", ".html") if block_type == "html" else (".xml",)
        for suffix in suffixes:
            draft = course.path / "drafts" / block_type / f"{block_id}{suffix}"
            if draft.exists():
                target = course.path / block_type / f"{block_id}{suffix}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(draft, target)


def _component_element(spec: ComponentSpec) -> ElementTree.Element:
    """The OLX element of a component, as Studio's export writes it."""
    attrs = {"display_name": spec.display_name}
    if spec.block_type == "html":
        return ElementTree.Element("html", {**attrs, "filename": spec.block_id})
    if spec.block_type == "problem":
        element = safe_fromstring(spec.fields["data"])
        element.attrib.pop("url_name", None)
        element.set("display_name", spec.display_name)
        return element
    if spec.block_type == "video":
        return _video_element(attrs, spec.fields)
    raise ValueError(f"unsupported component type {spec.block_type!r}")


def _video_element(attrs: dict[str, str], fields: dict[str, Any]) -> ElementTree.Element:
    """A video as Studio's export writes it (xmodule/video_block/video_block.py
    ``definition_to_xml``): with an ``edx_video_id``, edxval's ``<video_asset>`` (an external
    video: no encodings, duration 0) lists its transcripts, ``sub`` is emptied once English is
    among them, and a ``<transcript>`` child repeats each entry of ``transcripts``."""
    sources = fields.get("html5_sources", [])
    transcripts = fields.get("transcripts", {})
    edx_video_id = fields.get("edx_video_id", "")
    extra = {"edx_video_id": edx_video_id, "sub": ""} if edx_video_id else {}
    element = ElementTree.Element(
        "video",
        {
            **attrs,
            **extra,
            "html5_sources": json.dumps(sources),
            "transcripts": json.dumps(transcripts, sort_keys=True),
            "youtube_id_1_0": "",
            "download_video": "true",
        },
    )
    for src in sources:
        ElementTree.SubElement(element, "source", {"src": src})
    if edx_video_id:
        asset = ElementTree.SubElement(
            element, "video_asset", {"client_video_id": "external video", "duration": "0.0", "image": ""}
        )
        listed = ElementTree.SubElement(asset, "transcripts")
        for language in sorted(transcripts):
            ElementTree.SubElement(
                listed, "transcript", {"file_format": "srt", "language_code": language, "provider": "Custom"}
            )
    for language in sorted(transcripts):
        ElementTree.SubElement(element, "transcript", {"language": language, "src": transcripts[language]})
    return element
