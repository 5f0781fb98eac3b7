"""
OLX trees to ``.tar.gz``, streamed: tar, gzip and the upload run as one pipeline, so neither
the tarball nor a temporary file of it ever exists whole.

The layout is Studio's (``create_export_tarball``): one top folder named after the course's
url_name, holding ``course.xml``. Compression is ISA-L's deflate (several times faster than zlib,
and it releases the GIL so courses compress in parallel threads); files already compressed
(images, videos, archives) are stored in the stream as they are (``gzip_writer``).

Entries are built from one ``stat`` each rather than by ``TarFile.add``, whose owner and group
name lookups, PAX header checks and copies of each entry cost a third of the CPU of a course of
many small files (profiled with py-spy, see bench/RESULTS.md). Owners are not recorded (uid and
gid 0, no names): they mean nothing on the machine that imports the course, and they name the
server's users. Only folders and regular files are written; symbolic links could point out of
the course.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from plugin_app.data import OlxTree
from plugin_app.gzip_writer import STORE_FROM_BYTES, GzipWriter, already_compressed, read_signature

# Read source files in chunks of this size (one write each into the gzip stream).
_COPY_BUFFER = 1024 * 1024
# Folders a course kept in git may hold that are not part of the course.
_SKIPPED_NAMES = {".git", ".hg", ".svn", "__pycache__"}
_BLOCK, _RECORD, _NUL = tarfile.BLOCKSIZE, tarfile.RECORDSIZE, b"\0"
_LARGEST_OCTAL = 8**11  # what the size and mtime fields hold in octal digits


def write_tarball(tree: OlxTree, out: BinaryIO, level: int) -> None:
    """Write the OLX tree as a gzip-compressed tarball (GNU format) into ``out`` (ISA-L level 0-3)."""
    with GzipWriter(out, level) as gz:
        for info, path, _status in entries(tree.path, tree.root_name):
            if info.isdir():
                gz.write(_header(info))
                continue
            with open(path, "rb") as source:
                # The file's header goes in the same mode as its content: a run of images is
                # one stored run.
                gz.storing = info.size >= STORE_FROM_BYTES and already_compressed(read_signature(source))
                _write_file(gz, _header(info), source, info.size)
        # The end of the archive: two zero blocks, then zeros up to a whole record (as tarfile).
        end = 2 * _BLOCK
        gz.write(_NUL * (end + -(gz.tell() + end) % _RECORD))


def _write_file(gz: GzipWriter, header: bytes, source: BinaryIO, size: int) -> None:
    """The entry of one file: header, content (exactly ``size`` bytes), padding to a block."""
    padding = _NUL * (-size % _BLOCK)
    if size <= _COPY_BUFFER and not gz.storing:  # most files of a course: one write
        gz.write(header + _read_exactly(source, size) + padding)
        return
    gz.write(header)
    while size:
        chunk = _read_exactly(source, min(size, _COPY_BUFFER))
        gz.write(chunk)
        size -= len(chunk)
    gz.write(padding)


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:  # the file shrank since its stat: its header would lie
        raise OSError(f"{getattr(source, 'name', 'A file')} changed while it was being exported.")
    return data


def _header(info: tarfile.TarInfo) -> bytes:
    """The entry's GNU tar header, as ``info.tobuf`` writes it, built directly for the entries
    ours are (no owner, no link, short name): tarfile's general path costs a third of the time
    of a course of many small files. Long names and huge sizes go through tarfile."""
    name = info.name.encode("utf-8", "surrogateescape") + (b"/" if info.isdir() else b"")
    if len(name) > 100 or not (0 <= info.size < _LARGEST_OCTAL and 0 <= info.mtime < _LARGEST_OCTAL):
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    fields = b"".join(
        (
            name.ljust(100, _NUL),
            b"%07o\0" % (info.mode & 0o7777),
            b"0000000\0" * 2,  # uid, gid
            b"%011o\0" % info.size,
            b"%011o\0" % int(info.mtime),
            b" " * 8,  # the checksum, counted as spaces
            info.type,
            _NUL * 100,  # linkname
            tarfile.GNU_MAGIC,
        )
    ).ljust(_BLOCK, _NUL)
    return b"%s%06o\0%s" % (fields[:148], sum(fields), fields[155:])


def entries(root: Path, top: str) -> Iterator[tuple[tarfile.TarInfo, str, os.stat_result]]:
    """Every folder and regular file under ``root``, named below ``top``, in a stable order,
    with the ``stat`` its entry was built from: exactly what the tarball holds."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if name not in _SKIPPED_NAMES and not os.path.islink(os.path.join(folder, name))
        )
        relative = os.path.relpath(folder, root)
        prefix = top if relative == "." else f"{top}/{Path(relative).as_posix()}"
        status = os.stat(folder)
        yield _info(prefix, status), folder, status
        for name in sorted(files):
            path = os.path.join(folder, name)
            status = os.lstat(path)
            if stat.S_ISREG(status.st_mode) and name not in _SKIPPED_NAMES:
                yield _info(f"{prefix}/{name}", status), path, status


class _Entry(tarfile.TarInfo):
    """A TarInfo that ``TarFile.addfile`` need not copy (it copies its argument, slowly, with
    ``copy.copy``, in case the caller reuses it: ours are used once)."""

    __slots__ = ()

    def __copy__(self) -> _Entry:
        return self


def _info(name: str, status: os.stat_result) -> tarfile.TarInfo:
    info = _Entry(name)
    info.mtime = int(status.st_mtime)
    if stat.S_ISDIR(status.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = status.st_size, 0o755 if status.st_mode & 0o111 else 0o644
    return info
