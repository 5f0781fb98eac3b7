"""
OLX trees to ``.tar.gz``, streamed: tar, gzip and the upload run as one pipeline, so neither
the tarball nor a temporary file of it ever exists whole.

The layout is Studio's (``create_export_tarball``): one top folder named after the course's
url_name, holding ``course.xml``. Compression is ISA-L's gzip (standard gzip output, several
times faster than zlib, and it releases the GIL so courses compress in parallel threads).
"""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from isal import igzip

from plugin_app.data import OlxTree

# Read source files in large chunks: tarfile's default of 16 KiB makes gzip calls dominate.
_COPY_BUFFER = 1024 * 1024
# Folders a course kept in git may hold that are not part of the course.
_SKIPPED_NAMES = {".git", ".hg", ".svn", "__pycache__"}


def _skip_vcs(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if info.name.rsplit("/", 1)[-1] in _SKIPPED_NAMES else info


def write_tarball(tree: OlxTree, out: BinaryIO, level: int) -> None:
    """Write the OLX tree as a gzip-compressed tarball into ``out`` (ISA-L level 0-3)."""
    with igzip.IGzipFile(fileobj=out, mode="wb", compresslevel=level) as gz:
        with tarfile.open(fileobj=gz, mode="w", copybufsize=_COPY_BUFFER) as tar:
            tar.add(str(tree.path), arcname=tree.root_name, filter=_skip_vcs)
