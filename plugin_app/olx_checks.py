"""
What the platform reads of an OLX course folder, checked before a validator, an importer or the
course index reads it (a restore's tarball, once unpacked; the ``olx_directory`` index).

- XML is parsed as a stream, DTDs and entities forbidden, nesting bounded: memory stays small
  whatever a file holds (its size is capped while it is unpacked).
- ``url_name`` and ``filename`` values must name files inside the course folder. Studio's
  importer and olxcleaner turn ``:`` into ``/`` and read ``<type>/<url_name>.xml`` and
  ``html/<filename>.html`` as they are: ``..:..:other-course:course:Run`` would read another
  course's files, and tell whether any file exists on the host.
- ``course.xml`` names a valid course key; its run's file ``course/<run>.xml`` is a ``<course>``.
- The JSON the platform loads has the shape it reads: ``policies/<run>/policy.json`` an object
  of objects keyed ``<type>/<url_name>`` (``xmodule/modulestore/xml.py``: ``policy.get(...)``
  then each value's fields), ``grading_policy.json`` an object whose ``GRADER`` is a list of
  objects and ``GRADE_CUTOFFS`` an object of numbers (``CourseBlock.set_grading_policy``), and
  ``policies/assets.json`` an object of objects. A ``[]`` there breaks the course for good.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import iterparse as safe_iterparse
from defusedxml.ElementTree import parse as safe_parse
from opaque_keys import InvalidKeyError
from opaque_keys.edx.locator import CourseLocator

from plugin_app.files import unsafe_relative_path

# Files of a course that are parsed or rewritten as text (``static/`` files keep their bytes).
TEXT_SUFFIXES = (".xml", ".html", ".json", ".csv")
# Attributes whose values the platform and olxcleaner turn into file paths.
PATH_ATTRIBUTES = ("url_name", "filename")
# OLX nests about ten levels deep (course, chapter, ..., a problem's HTML): far more is an attack.
MAX_DEPTH = 256
# Problems listed per file: a hostile file can hold thousands of bad pointers.
_MAX_PER_FILE = 3


class NotACourse(ValueError):
    """A folder whose ``course.xml`` names no course the platform can load; the message says why."""


@dataclass(frozen=True)
class Identity:
    """The course a folder holds, as ``course.xml`` names it (``url_name`` is the run)."""

    key: CourseLocator
    url_name: str


def path_problem(value: str) -> str | None:
    """Why a ``url_name`` or ``filename`` value would reach outside the course folder, or None."""
    return unsafe_relative_path(value.replace(":", "/"))


def xml_problems(path: Path | IO[bytes]) -> list[str]:
    """Why an XML file (a path, or an open file such as a ZIP member) is refused (not well-formed,
    DTD or entities, too deep, a path value that leaves the course folder); empty when it is fine.
    Streamed: memory grows with depth only."""
    problems: list[str] = []
    stack: list[Any] = []
    try:
        events = safe_iterparse(
            str(path) if isinstance(path, Path) else path,
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        for event, element in events:
            if event == "end":
                stack.pop()
                if stack:
                    del stack[-1][-1]  # the element just ended is its parent's last child
                continue
            stack.append(element)
            if len(stack) > MAX_DEPTH:
                return [f"nests elements more than {MAX_DEPTH} deep"]
            for name in PATH_ATTRIBUTES:
                value = element.get(name)
                why = path_problem(value) if value is not None else None
                if why and len(problems) < _MAX_PER_FILE:
                    problems.append(f"<{element.tag} {name}={value!r}> {why} (it must stay in the course)")
    except DefusedXmlException as exc:
        return [f"is refused: {type(exc).__name__} (DTDs, entities and external references are forbidden)"]
    except ParseError as exc:
        return [f"is not well-formed XML ({exc})"]
    return problems


def read_identity(course_dir: Path) -> Identity:
    """The course ``course.xml`` names; NotACourse when it names none (or a run that leaves the folder).

    The course index and the restore checks both read a folder's identity here, so that what a
    restore checked is what the index serves.
    """
    try:
        pointer = safe_parse(course_dir / "course.xml", forbid_dtd=True).getroot()
    except (OSError, ParseError, DefusedXmlException) as exc:
        raise NotACourse(f"course.xml cannot be read ({type(exc).__name__})") from None
    attributes = pointer.attrib if pointer is not None and pointer.tag == "course" else {}
    org, number, run = (attributes.get(a, "") for a in ("org", "course", "url_name"))
    if not (org and number and run):
        raise NotACourse("course.xml is not a course pointer: it needs org, course and url_name")
    if path_problem(run):
        raise NotACourse(f"course.xml's url_name {run!r} {path_problem(run)}")
    try:
        key = CourseLocator(org, number, run)
    except InvalidKeyError:
        raise NotACourse("course.xml names no valid course key (org, course, url_name)") from None
    if not (course_dir / "course" / f"{run}.xml").is_file():
        raise NotACourse(f"course.xml points at course/{run}.xml, which is missing")
    return Identity(key, run)


def course_problems(course_dir: Path) -> tuple[Identity | None, list[str]]:
    """The course's identity and every problem of what the platform reads first: course.xml, the
    run's file, its policies and the asset policy."""
    try:
        identity = read_identity(course_dir)
    except NotACourse as exc:
        return None, [f"{exc}."]
    problems = []
    root_file = course_dir / "course" / f"{identity.url_name}.xml"
    try:
        root = safe_parse(root_file, forbid_dtd=True).getroot()
    except (OSError, ParseError, DefusedXmlException):
        root = None
    if root is None or root.tag != "course":
        problems.append(f"course/{identity.url_name}.xml is not a <course> element.")
    policies = course_dir / "policies"
    for path, check in (
        (policies / identity.url_name / "policy.json", _policy_shape),
        (policies / identity.url_name / "grading_policy.json", _grading_shape),
        (policies / "assets.json", _assets_shape),
    ):
        problem = _json_problem(path, check)
        if problem:
            problems.append(f"{path.relative_to(course_dir).as_posix()} {problem}.")
    return identity, problems


def _json_problem(path: Path, check: Any) -> str | None:
    if not path.is_file():
        return None  # the platform reads none: its defaults apply
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError alike
        return f"is not valid JSON ({exc})"
    except RecursionError:
        return "is not valid JSON (nested too deeply)"
    why: str | None = check(data)
    return why


def _policy_shape(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "must be a JSON object (keys like course/<run>)"
    for key, value in data.items():
        if "/" not in key or not isinstance(value, dict):
            return f"must map <type>/<url_name> to objects ({key!r} does not)"
    return None


def _grading_shape(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "must be a JSON object (GRADER, GRADE_CUTOFFS)"
    grader = data.get("GRADER", [])
    if not isinstance(grader, list) or not all(isinstance(g, dict) for g in grader):
        return "needs GRADER to be a list of objects"
    cutoffs = data.get("GRADE_CUTOFFS", {})
    if not isinstance(cutoffs, dict) or not all(_is_number(v) for v in cutoffs.values()):
        return "needs GRADE_CUTOFFS to be an object of numbers"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _assets_shape(data: Any) -> str | None:
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        return "must be a JSON object of objects"
    return None
