"""
Courses kept as OLX directories in a folder: one directory per course, ``course.xml`` at its root.

The layout is the one Studio's export writes: ``course.xml`` points at ``course/<run>.xml``;
blocks live in ``<type>/<url_name>.xml`` (html bodies in ``html/<url_name>.html``); unpublished
units live under ``drafts/`` with ``parent_url`` and ``index_in_children_list``; static files in
``static/`` with their metadata (``locked`` included) in ``policies/assets.json``.

Writers take an exclusive ``flock`` on the course directory and exporters a shared one, so an
export never sees a course half-written by a bulk upload, across threads and processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

from defusedxml.ElementTree import fromstring as safe_fromstring
from defusedxml.ElementTree import parse as safe_parse
from django.conf import settings
from django.contrib.auth.models import Group
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey, UsageKey
from opaque_keys.edx.locator import CourseLocator

from plugin_app.backends.base import (
    OUTLINE_CATEGORIES,
    CourseBackend,
    CourseNotFound,
    UnitNotFound,
    outline_block_id,
    parse_outline_path,
    studio_asset_name,
    video_transcript_name,
)
from plugin_app.data import AssetFile, ComponentSpec, CourseSummary, OlxTree
from plugin_app.files import atomic_file

_DRAFT_ATTRS = ("parent_url", "index_in_children_list")
_COMPONENT_TYPES = ("html", "problem", "video")


def author_group_name(course_key: CourseKey) -> str:
    """The Django group whose members may author the course (besides staff)."""
    return f"course_authors:{course_key}"


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as out:
        out.write(data)


def _write_xml(path: Path, element: ElementTree.Element) -> None:
    ElementTree.indent(element)
    _write_atomic(path, ElementTree.tostring(element, encoding="utf-8") + b"\n")


def _read_xml(path: Path) -> ElementTree.Element:
    return safe_parse(path).getroot()


class _Course:
    """One OLX course directory: where each block's file is, and how to change it."""

    def __init__(self, path: Path, course_key: CourseKey, url_name: str):
        self.path, self.key, self.url_name = path, course_key, url_name

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def block_file(self, block_type: str, block_id: str, draft: bool = False) -> Path:
        return self.path / ("drafts" if draft else "") / block_type / f"{block_id}.xml"

    def root_file(self) -> Path:
        return self.path / "course" / f"{self.url_name}.xml"

    def settings(self) -> dict:
        """The course's fields: attributes of its root block, overridden by its policy (as on import)."""
        fields: dict = dict(_read_xml(self.root_file()).attrib) if self.root_file().exists() else {}
        policy_path = self.path / "policies" / self.url_name / "policy.json"
        if policy_path.exists():
            fields.update(json.loads(policy_path.read_text("utf-8")).get(f"course/{self.url_name}", {}))
        return fields

    def usage_key(self, block_type: str, block_id: str) -> UsageKey:
        return self.key.make_usage_key(block_type, block_id)

    def children(self, element: ElementTree.Element, block_type: str) -> list[str]:
        return [child.get("url_name", "") for child in element if child.tag == block_type]

    def find_child(self, parent: ElementTree.Element, block_type: str, display_name: str) -> str | None:
        """The url_name of the published child of that type and title, if any."""
        for url_name in self.children(parent, block_type):
            path = self.block_file(block_type, url_name)
            if path.exists() and _read_xml(path).get("display_name") == display_name:
                return url_name
        return None

    def add_pointer(
        self, parent_path: Path, block_type: str, block_id: str, index: int | None = None
    ) -> None:
        parent = _read_xml(parent_path)
        if block_id in self.children(parent, block_type):
            return
        pointer = ElementTree.Element(block_type, {"url_name": block_id})
        if index is None:
            # Keep non-block children (e.g. <wiki/> of the course) last, as Studio does.
            index = sum(1 for child in parent if child.tag in (*OUTLINE_CATEGORIES, *_COMPONENT_TYPES))
        parent.insert(index, pointer)
        _write_xml(parent_path, parent)


class OlxDirectoryBackend(CourseBackend):
    """Courses in ``root``: each sub-directory holding a ``course.xml`` is a course."""

    name = "olx_directory"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._index: dict[CourseKey, _Course] = {}
        self._index_stamp: tuple | None = None

    @classmethod
    def from_settings(cls) -> OlxDirectoryBackend:
        return cls(settings.EXPORTBULK_OLX_ROOT)

    # Course discovery -------------------------------------------------------------------------

    def _courses(self) -> dict[CourseKey, _Course]:
        """The course index, rebuilt when a course directory is added, removed or renamed."""
        entries = sorted(p for p in self.root.iterdir() if (p / "course.xml").is_file())
        stamp = tuple((p.name, (p / "course.xml").stat().st_mtime_ns) for p in entries)
        if stamp != self._index_stamp:
            index = {}
            for path in entries:
                pointer = _read_xml(path / "course.xml")
                org, number, run = pointer.get("org"), pointer.get("course"), pointer.get("url_name")
                if org and number and run:
                    key = CourseLocator(org, number, run)
                    index[key] = _Course(path, key, run)
            self._index, self._index_stamp = index, stamp
        return self._index

    def _course(self, course_key: CourseKey) -> _Course:
        try:
            return self._courses()[course_key.for_branch(None)]
        except KeyError:
            raise CourseNotFound(str(course_key)) from None

    def list_courses(self) -> list[CourseSummary]:
        summaries = []
        for key, course in sorted(self._courses().items(), key=lambda item: str(item[0])):
            fields = course.settings()
            summaries.append(
                CourseSummary(
                    course_id=str(key),
                    display_name=str(fields.get("display_name", key)),
                    org=key.org,
                    number=key.course,
                    run=key.run,
                    start=fields.get("start"),
                    end=fields.get("end"),
                    self_paced=fields.get("self_paced") in (True, "true"),
                )
            )
        return summaries

    def course_exists(self, course_key: CourseKey) -> bool:
        return course_key.for_branch(None) in self._courses()

    def has_write_access(self, user, course_key: CourseKey) -> bool:
        if not (user and user.is_active):
            return False
        if user.is_staff:
            return True
        return Group.objects.filter(user=user, name=author_group_name(course_key)).exists()

    # Export -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def export_olx(self, course_key: CourseKey) -> Iterator[OlxTree]:
        course = self._course(course_key)
        with course.locked(exclusive=False):
            yield OlxTree(path=course.path, root_name=course.url_name)

    # Content ----------------------------------------------------------------------------------

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
            policy_path = course.path / "policies" / "assets.json"
            policy = json.loads(policy_path.read_text("utf-8")) if policy_path.exists() else {}
            replaced = policy.get(name, {}).get("displayname")
            if replaced and replaced != file_name:  # the same asset, uploaded under another name
                (course.path / "static" / replaced).unlink(missing_ok=True)
            policy[name] = {
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
            }
            _write_atomic(policy_path, json.dumps(policy, indent=4, sort_keys=True).encode("utf-8") + b"\n")
        return f"/{asset_key}"

    def save_video_transcript(self, video_key: UsageKey, srt: bytes, user) -> dict:
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
                    _read_xml(path).get("edx_video_id", "")
                    for draft in (False, True)
                    if (path := course.block_file("video", video_key.block_id, draft)).exists()
                ),
                "",
            ) or str(uuid.uuid4())
            name = video_transcript_name(edx_video_id)
            _write_atomic(course.path / "static" / name, srt)
        return {"edx_video_id": edx_video_id, "transcripts": {"en": name}}

    def resolve_unit(self, course_key: CourseKey, unit: str, user) -> UsageKey:
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

    def _ensure_outline(self, course: _Course, titles: list[str]) -> UsageKey:
        with course.locked(exclusive=True):
            parent_path = course.root_file()
            for depth, (block_type, title) in enumerate(zip(OUTLINE_CATEGORIES, titles, strict=True)):
                block_id = course.find_child(_read_xml(parent_path), block_type, title)
                if block_id is None:
                    block_id = outline_block_id(course.key, titles[: depth + 1])
                    path = course.block_file(block_type, block_id)
                    if not path.exists():
                        _write_xml(path, ElementTree.Element(block_type, {"display_name": title}))
                    course.add_pointer(parent_path, block_type, block_id)
                parent_path = course.block_file(block_type, block_id)
        return course.usage_key("vertical", block_id)

    def create_component(self, unit_key: UsageKey, spec: ComponentSpec, user) -> UsageKey:
        course = self._course(unit_key.course_key)
        with course.locked(exclusive=True):
            draft = not course.block_file("vertical", unit_key.block_id).exists()
            unit_path = course.block_file("vertical", unit_key.block_id, draft)
            if not unit_path.exists():
                raise UnitNotFound(str(unit_key))
            element = _component_element(spec)
            if spec.block_type == "html":
                html_path = course.path / ("drafts" if draft else "") / "html" / f"{spec.block_id}.html"
                _write_atomic(html_path, spec.fields.get("data", "").encode("utf-8"))
            _write_xml(course.block_file(spec.block_type, spec.block_id, draft), element)
            course.add_pointer(unit_path, spec.block_type, spec.block_id)
        return course.usage_key(spec.block_type, spec.block_id)

    def publish(self, usage_key: UsageKey, user) -> None:
        """Move a draft unit and its draft children into the published tree."""
        course = self._course(usage_key.course_key)
        with course.locked(exclusive=True):
            draft_path = course.block_file(usage_key.block_type, usage_key.block_id, draft=True)
            if not draft_path.exists():
                return  # already published: blocks in the tree are the published version
            unit = _read_xml(draft_path)
            parent_key = UsageKey.from_string(unit.get("parent_url")).map_into_course(course.key)
            index = int(unit.get("index_in_children_list", "0"))
            for attr in _DRAFT_ATTRS:
                unit.attrib.pop(attr, None)
            for child in unit:
                self._publish_draft_file(course, child.tag, child.get("url_name", ""))
            _write_xml(course.block_file(usage_key.block_type, usage_key.block_id), unit)
            draft_path.unlink()
            parent_path = course.block_file(parent_key.block_type, parent_key.block_id)
            course.add_pointer(parent_path, usage_key.block_type, usage_key.block_id, index)

    @staticmethod
    def _publish_draft_file(course: _Course, block_type: str, block_id: str) -> None:
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


def _video_element(attrs: dict, fields: dict) -> ElementTree.Element:
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
