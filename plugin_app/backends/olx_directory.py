"""
Courses kept as OLX directories in a folder: one directory per course, ``course.xml`` at its root.

The layout is the one Studio's export writes: ``course.xml`` points at ``course/<run>.xml``;
blocks live in ``<type>/<url_name>.xml`` (html bodies in ``html/<url_name>.html``); unpublished
units live under ``drafts/`` with ``parent_url`` and ``index_in_children_list``; static files in
``static/`` with their metadata (``locked`` included) in ``policies/assets.json``.

Writers take an exclusive ``flock`` on the course directory and exporters a shared one, so an
export never sees a course half-written by a bulk upload, across threads and processes. A batch
holds the exclusive lock over several writes and rewrites ``policies/assets.json`` once, at its
end: a row's cost then does not grow with the number of assets the course already has.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
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

from plugin_app.backends import olx_restore
from plugin_app.backends.base import (
    OUTLINE_CATEGORIES,
    CourseBackend,
    CourseNotFound,
    UnitNotFound,
    outline_block_id,
    parse_outline_path,
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


class _AssetPolicy:
    """A course's ``policies/assets.json``, read when first changed and written back on ``save``."""

    def __init__(self, course_path: Path):
        self.path = course_path / "policies" / "assets.json"
        self._entries: dict | None = None

    def set(self, name: str, entry: dict) -> None:
        if self._entries is None:
            self._entries = json.loads(self.path.read_text("utf-8")) if self.path.exists() else {}
        self._entries[name] = entry

    def save(self) -> None:
        if self._entries is not None:  # the C encoder (no indent): thousands of assets in milliseconds
            _write_atomic(self.path, json.dumps(self._entries, sort_keys=True).encode("utf-8") + b"\n")


# Per thread: the courses it holds in a batch (by path), with their pending asset policy.
_held = threading.local()


def _batches() -> dict[Path, _AssetPolicy]:
    if not hasattr(_held, "courses"):
        _held.courses = {}
    return _held.courses


class _Course:
    """One OLX course directory: where each block's file is, and how to change it."""

    def __init__(self, path: Path, course_key: CourseKey, url_name: str):
        self.path, self.key, self.url_name = path, course_key, url_name

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        if self.path in _batches():  # this thread's batch holds the course exclusively already
            yield
            return
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


class OlxDirectoryBackend(olx_restore.OlxRestoreMixin, CourseBackend):
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

    def can_create_course(self, user, course_key: CourseKey) -> bool:
        """Standalone has no course-creator role: staff create courses."""
        return bool(user and user.is_active and user.is_staff)

    # Export -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def export_olx(self, course_key: CourseKey) -> Iterator[OlxTree]:
        course = self._course(course_key)
        with course.locked(exclusive=False):
            yield OlxTree(path=course.path, root_name=course.url_name)

    # Content ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self, course_key: CourseKey) -> Iterator[None]:
        course = self._course(course_key)
        if course.path in _batches():
            yield
            return
        with course.locked(exclusive=True):
            policy = _batches()[course.path] = _AssetPolicy(course.path)
            try:
                yield
                policy.save()
            finally:
                del _batches()[course.path]

    def save_asset(self, course_key: CourseKey, asset: AssetFile) -> str:
        course = self._course(course_key)
        asset_key = course_key.make_asset_key("asset", asset.name)
        with course.locked(exclusive=True):
            with atomic_file(course.path / "static" / asset.name) as out:
                shutil.copyfileobj(asset.stream, out, 1024 * 1024)
            batch = _batches().get(course.path)
            policy = batch or _AssetPolicy(course.path)
            policy.set(
                asset.name,
                {
                    "contentType": asset.content_type,
                    "content_son": {
                        "category": "asset",
                        "course": course_key.course,
                        "name": asset.name,
                        "org": course_key.org,
                        "revision": None,
                        "run": course_key.run,
                        "tag": "c4x",
                    },
                    "displayname": asset.name,
                    "filename": str(asset_key),
                    "import_path": asset.name,
                    "locked": asset.locked,
                    "thumbnail_location": None,
                },
            )
            if batch is None:
                policy.save()
        return f"/{asset_key}"

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
        sources = spec.fields.get("html5_sources", [])
        transcripts = spec.fields.get("transcripts", {})
        element = ElementTree.Element(
            "video",
            {
                **attrs,
                "html5_sources": json.dumps(sources),
                "transcripts": json.dumps(transcripts),
                "youtube_id_1_0": "",
                "download_video": "true",
            },
        )
        for src in sources:
            ElementTree.SubElement(element, "source", {"src": src})
        for language, name in transcripts.items():
            ElementTree.SubElement(element, "transcript", {"language": language, "src": name})
        return element
    raise ValueError(f"unsupported component type {spec.block_type!r}")
