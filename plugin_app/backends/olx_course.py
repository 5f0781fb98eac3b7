"""
One OLX course folder on disk, as the ``olx_directory`` backend reads and writes it: atomic file
writes, the course's ``policies/assets.json``, batches of writes, and the course lock.

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
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from defusedxml.ElementTree import parse as safe_parse
from opaque_keys.edx.keys import CourseKey, UsageKey

from plugin_app.backends.base import OUTLINE_CATEGORIES
from plugin_app.files import atomic_file

COMPONENT_TYPES = ("html", "problem", "video")


def write_atomic(path: Path, data: bytes) -> None:
    with atomic_file(path) as out:
        out.write(data)


def write_xml(path: Path, element: ElementTree.Element) -> None:
    batch = batch_of(path)
    if batch and path in batch.staged:  # written at the batch's end, with the batch's other changes
        batch.staged[path] = element
        return
    ElementTree.indent(element)
    write_atomic(path, ElementTree.tostring(element, encoding="utf-8") + b"\n")


def read_xml(path: Path) -> ElementTree.Element:
    batch = batch_of(path)
    if batch and path in batch.staged:
        return batch.staged[path]
    root = safe_parse(path).getroot()
    assert root is not None  # a parsed document has a root
    return root


def update_xml(path: Path, element: ElementTree.Element) -> None:
    """Write a changed file; in a batch, once at its end (a unit's file grows with each component)."""
    batch = batch_of(path)
    if batch:
        batch.staged[path] = element
    else:
        write_xml(path, element)


def unlink_if_there(path: Path) -> None:
    batch = batch_of(path)
    if batch:
        batch.staged.pop(path, None)
    path.unlink()


class AssetPolicy:
    """A course's ``policies/assets.json``, read when first changed and written back on ``save``.

    The last version this process wrote is kept (by path, with the file's stamp): the next
    batch of the same course parses it again only if someone else changed it meanwhile.
    """

    _last: dict[Path, tuple[tuple[int, int], dict[str, dict[str, Any]]]] = {}

    def __init__(self, course_path: Path):
        self.path = course_path / "policies" / "assets.json"
        self._entries: dict[str, dict[str, Any]] | None = None

    def _stamp(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_mtime_ns, stat.st_size

    def _read(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            if not self.path.exists():
                self._entries = {}
            else:
                stamp, entries = self._last.get(self.path, ((0, 0), {}))
                # A copy: a batch that fails must leave the kept version as the file has it.
                fresh = stamp == self._stamp()
                self._entries = dict(entries) if fresh else json.loads(self.path.read_text("utf-8"))
        return self._entries

    def get(self, name: str) -> dict[str, Any]:
        return self._read().get(name, {})

    def set(self, name: str, entry: dict[str, Any]) -> None:
        self._read()[name] = entry

    def save(self) -> None:
        if self._entries is not None:  # the C encoder (no indent): thousands of assets in milliseconds
            write_atomic(self.path, json.dumps(self._entries, sort_keys=True).encode("utf-8") + b"\n")
            self._last[self.path] = (self._stamp(), self._entries)


class Batch:
    """What a batch of writes to one course changed and has not written yet."""

    def __init__(self, course: Course):
        self.course = course
        self.policy = AssetPolicy(course.path)
        self.staged: dict[Path, ElementTree.Element] = {}
        self.units: dict[tuple[str, ...], UsageKey] = {}  # outline paths resolved in this batch

    def save(self) -> None:
        staged, self.staged = self.staged, {}
        for path, element in staged.items():
            write_xml(path, element)
        self.policy.save()


def course_folders(root: Path) -> tuple[tuple[str, int], ...]:
    """The course folders in ``root``, each with its course.xml's mtime, sorted: one ``stat`` per
    folder, as a standalone lookup checks them whenever it is not in a batch of the course."""
    found = []
    with os.scandir(root) as entries:
        for entry in entries:
            try:
                pointer = os.stat(os.path.join(entry.path, "course.xml"))
            except OSError:  # not a folder, or no course.xml in it
                continue
            if stat.S_ISREG(pointer.st_mode):
                found.append((entry.name, pointer.st_mtime_ns))
    return tuple(sorted(found))


# Per thread: the courses it holds in a batch (by path).
_held = threading.local()


def held_batches() -> dict[Path, Batch]:
    if not hasattr(_held, "courses"):
        _held.courses = {}
    courses: dict[Path, Batch] = _held.courses
    return courses


def batch_of(path: Path) -> Batch | None:
    for course_path, batch in held_batches().items():
        if path.is_relative_to(course_path):
            return batch
    return None


class Course:
    """One OLX course directory: where each block's file is, and how to change it."""

    def __init__(self, path: Path, course_key: CourseKey, url_name: str):
        self.path, self.key, self.url_name = path, course_key, url_name

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        if self.path in held_batches():  # this thread's batch holds the course exclusively already
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

    def settings(self) -> dict[str, Any]:
        """The course's fields: attributes of its root block, overridden by its policy (as on import)."""
        fields: dict[str, Any] = dict(read_xml(self.root_file()).attrib) if self.root_file().exists() else {}
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
            if path.exists() and read_xml(path).get("display_name") == display_name:
                return url_name
        return None

    def add_pointer(
        self, parent_path: Path, block_type: str, block_id: str, index: int | None = None
    ) -> None:
        parent = read_xml(parent_path)
        if block_id in self.children(parent, block_type):
            return
        pointer = ElementTree.Element(block_type, {"url_name": block_id})
        if index is None:
            # Keep non-block children (e.g. <wiki/> of the course) last, as Studio does.
            index = sum(1 for child in parent if child.tag in (*OUTLINE_CATEGORIES, *COMPONENT_TYPES))
        parent.insert(index, pointer)
        update_xml(parent_path, parent)
