"""
A benchmark-only course backend whose export holds the GIL, as the platform's does.

edx-platform's ``export_course_to_xml`` walks the XBlocks and writes their XML in pure Python;
threads then give about one core whatever their number. This backend is ``olx_directory`` plus
that kind of work: each block's XML is serialized again by a Python loop, ``ROUNDS`` times,
before the tree is handed over. Plugged in by dotted path:
``EXPORTBULK_COURSE_BACKEND=bench.pure_python_backend.PurePythonBackend``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from xml.etree import ElementTree

from opaque_keys.edx.keys import CourseKey

from plugin_app.backends.olx_directory import OlxDirectoryBackend
from plugin_app.data import OlxTree

ROUNDS = 2000  # about 0.4 s of one core per copy of the sample course


def _serialize(element: ElementTree.Element) -> int:
    """A pure-Python walk over one block and its children (what an XBlock export does per field)."""
    size = len(element.tag)
    for name, value in element.attrib.items():
        size += sum(ord(c) & 1 for c in name) + sum(ord(c) & 1 for c in value)
    size += sum(ord(c) & 1 for c in (element.text or ""))
    return size + sum(_serialize(child) for child in element)


class PurePythonBackend(OlxDirectoryBackend):
    name = "bench_pure_python"

    @contextlib.contextmanager
    def export_olx(self, course_key: CourseKey) -> Iterator[OlxTree]:
        with super().export_olx(course_key) as tree:
            blocks = [ElementTree.parse(path).getroot() for path in sorted(tree.path.rglob("*.xml"))]
            for _ in range(ROUNDS):
                for block in blocks:
                    _serialize(block)
            yield tree
