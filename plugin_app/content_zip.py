"""
The content ZIP of a bulk upload, checked before anything is stored.

A ZIP comes from outside: its entry names may try to escape (``../``, absolute paths), it may
carry symlinks, or be a bomb. Only files are kept; their declared sizes bound the work, and
``zipfile`` itself refuses an entry whose data is larger than declared (CRC and size checks).
"""

from __future__ import annotations

import stat
import zipfile
from typing import BinaryIO

from django.conf import settings

from plugin_app.data import RowError
from plugin_app.files import unsafe_relative_path

COLUMN = "content"
# What zipfile can decompress; others (implode, AES's 99, ...) would only fail once the task runs.
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# Below this many uncompressed bytes, a high compression ratio costs nothing worth refusing.
_RATIO_FLOOR = 1024 * 1024


def unsafe_entry_name(name: str) -> str | None:
    """Why an entry name is unsafe, or None."""
    if not name:  # zipfile cuts names at a NUL: "\0x" reads as "", the extraction root itself
        return "has an empty name"
    problem = unsafe_relative_path(name)  # a backslash or NUL, an absolute path, ".."
    if problem:
        return problem
    if "." in name.split("/"):
        return "contains '.'"
    return None


def check_zip(stream: BinaryIO) -> tuple[set[str], list[RowError]]:
    """The file names in the ZIP, and every reason to refuse it."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):  # e.g. "zip file version 6.4"
        return set(), [RowError(None, COLUMN, "The content is not a valid ZIP file.")]
    names, problems = entry_problems(
        archive,
        settings.EXPORTBULK_UPLOAD_MAX_UNCOMPRESSED_BYTES,
        settings.EXPORTBULK_UPLOAD_MAX_COMPRESSION_RATIO,
    )
    return names, [RowError(None, COLUMN, problem) for problem in problems]


def entry_problems(archive: zipfile.ZipFile, max_total: int, max_ratio: int) -> tuple[set[str], list[str]]:
    """The file names in an open ZIP, and every reason to refuse it (its entries and their sizes)."""
    names: set[str] = set()
    errors: list[str] = []
    total = compressed = 0
    for info in archive.infolist():
        name = info.filename
        problem = unsafe_entry_name(name)
        if problem:
            errors.append(f"ZIP entry {name!r} {problem}.")
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            errors.append(f"ZIP entry {name!r} is a symbolic link.")
            continue
        if info.flag_bits & 0x1:
            errors.append(f"ZIP entry {name!r} is encrypted.")
            continue
        if info.is_dir():
            continue
        if info.compress_type not in _SUPPORTED_COMPRESSION:
            errors.append(
                f"ZIP entry {name!r} uses an unsupported compression method ({info.compress_type})."
            )
            continue
        if name in names:
            errors.append(f"ZIP entry {name!r} appears twice.")
            continue
        if info.file_size > max_ratio * max(info.compress_size, 1) and info.file_size > _RATIO_FLOOR:
            errors.append(f"ZIP entry {name!r} is compressed more than {max_ratio}:1 (a ZIP bomb?).")
            continue
        names.add(name)
        total += info.file_size
        compressed += info.compress_size
    if total > max_total:
        errors.append(f"The ZIP holds {total} bytes uncompressed; the limit is {max_total}.")
    elif total > max_ratio * max(compressed, 1) and total > _RATIO_FLOOR:
        # Many small entries, each under the floor, can make a bomb together.
        errors.append(f"The ZIP's files are compressed more than {max_ratio}:1 together (a ZIP bomb?).")
    return names, errors
