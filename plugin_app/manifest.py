"""
The CSV manifest of a bulk upload: parsed, and every row checked against the content ZIP.

Everything that can be known before the work starts is checked here, so that a bad request
is refused whole (with every error listed) and nothing is created.
"""

from __future__ import annotations

import csv
import io
import lzma
import mimetypes
import posixpath
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from django.conf import settings
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey, UsageKey

from plugin_app import row_checks
from plugin_app.backends.base import parse_outline_path, studio_asset_name
from plugin_app.data import ContentType, RowError, UploadMode

REQUIRED_COLUMNS = ("course_id", "file")
OPTIONAL_COLUMNS = ("type", "display_name", "unit", "transcript")
COLUMN = "file"  # the form field of the manifest, for errors about the manifest as a whole

_TYPE_BY_EXTENSION = {
    ".html": ContentType.HTML,
    ".htm": ContentType.HTML,
    ".xml": ContentType.PROBLEM,
    ".mp4": ContentType.VIDEO,
    ".webm": ContentType.VIDEO,
    ".ogv": ContentType.VIDEO,
    ".pdf": ContentType.PDF,
}


@dataclass
class ManifestRow:
    """One manifest row, checked and normalized; ``cells`` is the row as sent (for the report)."""

    line: int
    course_id: str
    file: str
    type: str
    display_name: str
    unit: str = ""
    transcript: str = ""
    cells: dict[str, str] = field(default_factory=dict)

    @property
    def asset_name(self) -> str:
        """The asset's name as Studio makes it from the file's own name (``Week_1_Readings.pdf``)."""
        return studio_asset_name(posixpath.basename(self.file))

    def as_data(self) -> dict[str, Any]:
        return {
            "cells": self.cells,
            "file": self.file,
            "type": self.type,
            "display_name": self.display_name,
            "unit": self.unit,
            "transcript": self.transcript,
        }

    @classmethod
    def from_data(cls, line: int, course_id: str, data: dict[str, Any]) -> ManifestRow:
        return cls(line=line, course_id=course_id, **data)


@dataclass
class Manifest:
    """The valid rows; ``course_lines`` maps every well-formed course key of the manifest,
    including those of rows with other errors, to its lines, so its access and existence are
    checked in the same answer."""

    header: list[str]
    rows: list[ManifestRow]
    course_lines: dict[str, list[int]] = field(default_factory=dict)


def content_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def parse_manifest(
    raw: bytes, mode: UploadMode, zip_names: set[str], archive: zipfile.ZipFile | None
) -> tuple[Manifest, list[RowError]]:
    """The manifest's rows, and every error found in them."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Manifest([], []), [
            RowError(None, COLUMN, f"The manifest is not UTF-8 text (byte {exc.start}).")
        ]
    if "\x00" in text:
        return Manifest([], []), [RowError(None, COLUMN, "The manifest contains NUL characters.")]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    try:
        lines = list(reader)
    except csv.Error as exc:
        return Manifest([], []), [RowError(reader.line_num, COLUMN, f"The manifest is not valid CSV: {exc}.")]
    if not lines:
        return Manifest([], []), [RowError(None, COLUMN, "The manifest is empty.")]
    header = [name.strip() for name in lines[0]]
    errors = _check_header(header)
    data_lines = [
        (number, cells) for number, cells in enumerate(lines[1:], start=2) if any(c.strip() for c in cells)
    ]
    max_rows = settings.EXPORTBULK_UPLOAD_MAX_ROWS
    if not data_lines:
        errors.append(RowError(None, COLUMN, "The manifest has no rows."))
    elif len(data_lines) > max_rows:
        errors.append(
            RowError(None, COLUMN, f"The manifest has {len(data_lines)} rows; the limit is {max_rows}.")
        )
    if errors:
        return Manifest(header, []), errors
    columns = [name.lower() for name in header]
    manifest = Manifest(header, [])
    for number, cells in data_lines:
        row, row_errors = _check_row(number, header, columns, cells, mode, zip_names, archive, manifest)
        errors.extend(row_errors)
        if row:
            manifest.rows.append(row)
    errors.extend(_check_asset_name_clashes(manifest.rows))
    if archive is not None and not errors:
        written = (path for row in manifest.rows for path in (row.file, row.transcript) if path)
        errors.extend(row_checks.check_write_budget(archive, written))
    return manifest, errors


# What spreadsheet programs write: commas, or semicolons where the comma is the decimal mark, or tabs.
_DELIMITERS = (",", ";", "\t")


def _delimiter(text: str) -> str:
    """The delimiter of the header line: the one of ``_DELIMITERS`` it holds most of."""
    header = text.split("\n", 1)[0]
    return max(_DELIMITERS, key=header.count)


def _check_header(header: list[str]) -> list[RowError]:
    columns = [name.lower() for name in header]
    errors = [
        RowError(1, name, f"The required column {name!r} is missing.")
        for name in REQUIRED_COLUMNS
        if name not in columns
    ]
    # Counted once: a header of thousands of columns must not cost a quadratic scan.
    errors += [
        RowError(1, name, f"The column {name!r} appears twice.")
        if name
        else RowError(1, "header", "More than one column of the header has no name.")
        for name, count in Counter(columns).items()
        if count > 1
    ]
    return errors


def _check_row(
    number: int,
    header: list[str],
    columns: list[str],
    cells: list[str],
    mode: UploadMode,
    zip_names: set[str],
    archive: zipfile.ZipFile | None,
    manifest: Manifest,
) -> tuple[ManifestRow | None, list[RowError]]:
    if len(cells) != len(header):
        return None, [
            RowError(number, COLUMN, f"The row has {len(cells)} cells; the header has {len(header)}.")
        ]
    max_chars = settings.EXPORTBULK_UPLOAD_MAX_CELL_CHARS
    too_long = [
        RowError(number, h, f"The cell is longer than {max_chars} characters.")
        for h, c in zip(header, cells, strict=True)
        if len(c) > max_chars
    ]
    if too_long:
        return None, too_long
    values = {column: cell.strip() for column, cell in zip(columns, cells, strict=True)}
    errors: list[RowError] = row_checks.check_cells(number, values)
    if errors:
        return None, errors

    def error(column: str, message: str) -> None:
        errors.append(RowError(number, column, message))

    course_id = values["course_id"]
    try:
        course_key = CourseKey.from_string(course_id)
    except InvalidKeyError:
        error("course_id", f"{course_id!r} is not a valid course key.")
    else:
        course_id = str(course_key)
        if course_key.deprecated:  # as Studio's asset upload (asset_storage_handlers.py ``_upload_asset``)
            error("course_id", f"{course_id} is an old-style course; Studio takes no asset uploads for it.")
        else:
            manifest.course_lines.setdefault(course_id, []).append(number)
    file = values["file"]
    if not file:
        error("file", "The file is empty.")
    elif file not in zip_names:
        error("file", f"{file!r} is not in the content ZIP.")
    else:
        errors.extend(row_checks.check_name_length(number, "file", file))
    content_type = values.get("type", "").lower() or _TYPE_BY_EXTENSION.get(
        posixpath.splitext(file)[1].lower(), "asset"
    )
    if content_type not in ContentType.__members__.values():
        error("type", f"{content_type!r} is not one of {', '.join(ContentType)}.")
    unit = values.get("unit", "")
    if mode == UploadMode.LINK:
        _check_unit(unit, course_id, error)
    transcript = values.get("transcript", "")
    if transcript and (
        content_type != ContentType.VIDEO or transcript not in zip_names or not transcript.endswith(".srt")
    ):
        error("transcript", "A transcript must be an .srt file of the content ZIP, on a video row.")
    if not errors and archive is not None and mode == UploadMode.LINK:
        _check_file_content(archive, file, content_type, error)
    if not errors and archive is not None and content_type == ContentType.PDF:
        errors.extend(row_checks.check_pdf(archive, number, file))
    if errors:
        return None, errors
    row = ManifestRow(
        line=number,
        course_id=course_id,
        file=file,
        type=content_type,
        display_name=values.get("display_name", "") or posixpath.basename(file),
        unit=unit,
        transcript=transcript,
        cells=dict(zip(header, cells, strict=True)),
    )
    try:
        CourseKey.from_string(course_id).make_asset_key("asset", row.asset_name)
    except InvalidKeyError:
        return None, [RowError(number, "file", f"{row.asset_name!r} cannot be used as a course asset name.")]
    return row, []


# Records one error of the row being checked: (column, message).
ErrorSink = Callable[[str, str], None]


def _without_branch(course_key: Any) -> Any:
    """The course key without its branch (``CourseLocator.for_branch``; the stubs type CourseKey only)."""
    return course_key.for_branch(None)


def _check_unit(unit: str, course_id: str, error: ErrorSink) -> None:
    if not unit:
        error("unit", "Link mode needs a unit: a unit usage key or 'Section / Subsection / Unit'.")
        return
    try:
        usage_key = UsageKey.from_string(unit)
    except InvalidKeyError:
        try:
            parse_outline_path(unit)
        except ValueError as exc:
            error("unit", f"{unit!r} is neither a usage key nor an outline path: {exc}.")
        return
    if usage_key.deprecated:  # i4x://...: no run, so it names no course of today's keys
        error("unit", f"{unit!r} is an old-style i4x:// key; give the unit's block-v1: usage key.")
    elif usage_key.block_type != "vertical":
        error("unit", f"{unit!r} is a {usage_key.block_type}, not a unit (vertical).")
    elif str(_without_branch(usage_key.course_key)) != course_id:
        error("unit", f"{unit!r} is not a unit of {course_id}.")


# What reading a damaged entry raises: zipfile's own checks, and each decompressor's errors
# (zlib, bz2's OSError, lzma), or ValueError for offsets that point before the file.
_CORRUPT_ENTRY = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
)


def _check_file_content(archive: zipfile.ZipFile, file: str, content_type: str, error: ErrorSink) -> None:
    """Content that becomes a component must be readable as such: UTF-8 html, safe problem XML."""
    if content_type not in (ContentType.HTML, ContentType.PROBLEM):
        return
    try:
        data = archive.read(file)
    except _CORRUPT_ENTRY as exc:
        # A bad CRC, data that does not match its declared size, a damaged stream: a row error, not a 500.
        error("file", f"{file!r} cannot be read from the content ZIP: {exc}.")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        error("file", f"{file!r} is not UTF-8 text.")
        return
    bad = row_checks.not_xml_char(text)
    if bad:
        error("file", f"{file!r} holds a control character ({bad}) that OLX cannot hold.")
        return
    if content_type == ContentType.PROBLEM:
        try:
            root = safe_fromstring(text, forbid_dtd=True)
        except DefusedXmlException:
            error("file", f"{file!r} uses DTDs or XML entities, which are not allowed.")
            return
        except Exception as exc:  # ParseError and the like  # noqa: BLE001
            error("file", f"{file!r} is not well-formed XML: {exc}.")
            return
        if root.tag != "problem":
            error("file", f"{file!r} is not a problem: its root element is <{root.tag}>, not <problem>.")


def _check_asset_name_clashes(rows: list[ManifestRow]) -> list[RowError]:
    """Assets are named after the file's base name, cleaned as Studio cleans it: two different
    files (``a b.pdf`` and ``a_b.pdf``, or ``x/a.pdf`` and ``y/a.pdf``) must not share one."""
    seen: dict[tuple[str, str], ManifestRow] = {}
    errors = []
    for row in rows:
        first = seen.setdefault((row.course_id, row.asset_name), row)
        if first.file != row.file:
            errors.append(
                RowError(
                    row.line,
                    "file",
                    f"{row.file!r} and {first.file!r} (row {first.line}) would both be "
                    f"stored as the asset {row.asset_name!r}.",
                )
            )
    return errors
