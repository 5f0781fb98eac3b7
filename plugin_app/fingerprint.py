"""
Content fingerprints of OLX trees: what a backup compares to tell that a course is unchanged
(per section of a course folder: ``backends.olx_versions``).

The fingerprint covers exactly what the tarball would hold (``archive.entries``): every
folder, and every file's path, size, executable bit and content. Content is hashed, never
inferred from ``stat``: a file rewritten with the same size within the same mtime second (or
with its mtime set back) must still count as changed.

Hashing every byte on every run would cost as much reading as the export it saves, so
:class:`FileDigests` keeps each file's digest keyed on its full ``stat`` identity (device,
inode, size, mtime and ctime in nanoseconds). That cache cannot hide a change: any write,
rename or ``utime`` sets the file's ctime to the current time, which no caller can set back;
and a digest is only cached when the file's ctime is older than the start of its read by more
than :data:`RACY_MARGIN_NS`, so a write racing the read (or landing in the same coarse
timestamp tick) still moves the ctime away from the cached one. This is git's "racily clean"
rule. It assumes the wall clock does not jump back by more than that margin.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import threading
import time

from plugin_app.archive import entries
from plugin_app.data import OlxTree

# Wider than any filesystem's timestamp granularity (FAT: 2 s; ext4 and XFS: a kernel tick).
RACY_MARGIN_NS = 3 * 10**9
SCHEME = "olx-sha256-v1"

_StatKey = tuple[int, int, int, int, int]


class FileDigests:
    """sha256 digests of files, recomputed only when a file may have changed (thread-safe)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[_StatKey, str]] = {}
        self._lock = threading.Lock()

    def digest(self, path: str, status: os.stat_result) -> str:
        """The digest of the file at ``path``, whose ``lstat`` (taken before this call) is ``status``."""
        key = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        started = time.time_ns()
        with open(path, "rb") as source:
            digest = hashlib.file_digest(source, "sha256").hexdigest()
        with self._lock:
            if max(status.st_mtime_ns, status.st_ctime_ns) < started - RACY_MARGIN_NS:
                self._cache[path] = (key, digest)
            else:
                self._cache.pop(path, None)
        return digest


def entry_line(info: tarfile.TarInfo, path: str, status: os.stat_result, digests: FileDigests) -> bytes:
    """One tarball entry as the fingerprint sees it: a folder's name; a file's name, size, mode and digest."""
    if info.isdir():
        return f"d\0{info.name}\n".encode("utf-8", "surrogateescape")
    line = f"f\0{info.name}\0{info.size}\0{info.mode:o}\0{digests.digest(path, status)}\n"
    return line.encode("utf-8", "surrogateescape")


def tree_fingerprint(tree: OlxTree, digests: FileDigests) -> str:
    """The fingerprint of an OLX tree: equal exactly when its tarball's contents would be."""
    combined = hashlib.sha256()
    for info, path, status in entries(tree.path, tree.root_name):
        combined.update(entry_line(info, path, status, digests))
    return f"{SCHEME}:{combined.hexdigest()}"
