"""
Checks of manifest rows against hostile input, done before anything is stored (issue 16).

- text that becomes OLX must hold only characters XML 1.0 can (a control character in a
  title would leave a block file no parser reads);
- names must fit the platform and the filesystem (an asset is a file named after it);
- the bytes of a file the app presents as a PDF must be a PDF (not HTML with scripts);
- the bytes one process writes into courses are bounded: a file named by many rows counts each time.
"""

from __future__ import annotations

import lzma
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterable

from django.conf import settings

from plugin_app.data import RowError

# Characters outside XML 1.0's Char production (https://www.w3.org/TR/xml/#charsets).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# NAME_MAX of Linux filesystems, in bytes; assets become files of that name (static/<name>).
MAX_NAME_BYTES = 255
# Where a PDF's header may start (readers accept leading bytes up to here).
_PDF_HEAD = 1024


def not_xml_char(text: str) -> str | None:
    """The first character of ``text`` that XML 1.0 cannot hold, as U+XXXX, or None."""
    match = _NOT_XML.search(text)
    return f"U+{ord(match.group()):04X}" if match else None


def check_cells(line: int, values: dict[str, str]) -> list[RowError]:
    """Every cell must be text XML can hold: titles, outline paths and names all end up in OLX."""
    errors = []
    for column, value in values.items():
        bad = not_xml_char(value)
        if bad:
            errors.append(
                RowError(line, column, f"The cell holds a control character ({bad}) XML cannot hold.")
            )
    return errors


def check_name_length(line: int, column: str, path: str) -> list[RowError]:
    name = posixpath.basename(path)
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        message = f"The file name {name[:40]!r}... is {size} bytes long; the limit is {MAX_NAME_BYTES}."
        return [RowError(line, column, message)]
    return []


def check_pdf(archive: zipfile.ZipFile, line: int, file: str) -> list[RowError]:
    """A ``.pdf`` must start as a PDF: browsers would run an HTML file served from the course."""
    try:
        with archive.open(file) as stream:
            head = stream.read(_PDF_HEAD)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return []  # a damaged entry: its row fails when it is read (and writes nothing)
    if b"%PDF" not in head:
        return [RowError(line, "file", f"{file!r} is not a PDF: its bytes do not start with %PDF.")]
    return []


def check_write_budget(archive: zipfile.ZipFile, paths: Iterable[str]) -> list[RowError]:
    """Refuse a process that would write more than ``EXPORTBULK_UPLOAD_MAX_WRITE_BYTES``: ``paths``
    are the archive's files as the rows name them, once per row."""
    limit = settings.EXPORTBULK_UPLOAD_MAX_WRITE_BYTES
    total = sum(archive.getinfo(path).file_size for path in paths)
    if total > limit:
        message = (
            f"The rows would write {total} bytes into courses (a file counts once per row naming it); "
            f"the limit is {limit} (EXPORTBULK_UPLOAD_MAX_WRITE_BYTES)."
        )
        return [RowError(None, "file", message)]
    return []
