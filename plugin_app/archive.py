"""
OLX trees to ``.tar.gz``, streamed: tar, gzip and the upload run as one pipeline, so neither
the tarball nor a temporary file of it ever exists whole.

The layout is Studio's (``create_export_tarball``): one top folder named after the course's
url_name, holding ``course.xml``. Compression is ISA-L's gzip (standard gzip output, several
times faster than zlib, and it releases the GIL so courses compress in parallel threads).

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

from isal import igzip

from plugin_app.data import OlxTree

# Read source files in large chunks: tarfile's default of 16 KiB makes gzip calls dominate.
_COPY_BUFFER = 1024 * 1024
# Folders a course kept in git may hold that are not part of the course.
_SKIPPED_NAMES = {".git", ".hg", ".svn", "__pycache__"}


def write_tarball(tree: OlxTree, out: BinaryIO, level: int) -> None:
    """Write the OLX tree as a gzip-compressed tarball into ``out`` (ISA-L level 0-3)."""
    with igzip.IGzipFile(fileobj=out, mode="wb", compresslevel=level) as gz:
        tar = tarfile.TarFile(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT, copybufsize=_COPY_BUFFER)
        with tar:
            for info, path in _entries(tree.path, tree.root_name):
                if info.isdir():
                    tar.addfile(info)
                else:
                    with open(path, "rb") as source:
                        tar.addfile(info, source)


def _entries(root: Path, top: str) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Every folder and regular file under ``root``, named below ``top``, in a stable order."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if name not in _SKIPPED_NAMES and not os.path.islink(os.path.join(folder, name))
        )
        relative = os.path.relpath(folder, root)
        prefix = top if relative == "." else f"{top}/{Path(relative).as_posix()}"
        yield _info(prefix, os.stat(folder)), folder
        for name in sorted(files):
            path = os.path.join(folder, name)
            status = os.lstat(path)
            if stat.S_ISREG(status.st_mode) and name not in _SKIPPED_NAMES:
                yield _info(f"{prefix}/{name}", status), path


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
