"""
Content versions of an OLX course folder: what the versions API answers and the backup fingerprint
is made of, from one pass over the folder's file metadata.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

from opaque_keys.edx.keys import CourseKey

from plugin_app.archive import entries
from plugin_app.backends.base import studio_asset_name
from plugin_app.data import ContentVersions, StaticAssets, Transcripts
from plugin_app.fingerprint import FileDigests, entry_line

# Where each part of an OLX course lies, as Studio's export lays it out: ``static/`` holds the
# course's files and edxval's transcripts (``<edx_video_id>-<lang>.srt``, and Studio's older
# ``subs_<id>.srt.sjson``), ``drafts/`` the unpublished units; every other file is published content.
TRANSCRIPT_SUFFIXES = (".srt", ".sjson")
_PUBLISHED, _DRAFTS, _ASSETS, _TRANSCRIPTS = "published", "drafts", "static_assets", "transcripts"


class _Latest:
    """A count of files and the one changed last: its time and name."""

    def __init__(self) -> None:
        self.count, self.time_ns, self.name = 0, -1, ""

    def add(self, name: str, status: os.stat_result) -> None:
        self.count += 1
        # ctime too: a file replaced with its old mtime kept (``cp -p``, ``touch -r``) still moves it.
        changed = max(status.st_mtime_ns, status.st_ctime_ns)
        if changed > self.time_ns or (changed == self.time_ns and name > self.name):
            self.time_ns, self.name = changed, name

    def when(self) -> datetime | None:
        return datetime.fromtimestamp(self.time_ns / 1e9, UTC) if self.count else None


def olx_versions(root: Path, top: str, course_key: CourseKey, digests: FileDigests) -> ContentVersions:
    """The content versions of an OLX course folder, in one pass over its file metadata.

    - ``published_version``: a digest of every published file and folder (outside ``static/``
      and ``drafts/``): a changed XML or policy file moves it;
    - ``static_assets``: the files under ``static/`` but transcripts; ``latest_upload`` is the
      last change (mtime or ctime) among them and ``latest_asset`` that file's asset key, as
      Studio names the file on import. An added or replaced file moves both, a removed one the count;
    - ``transcripts``: the transcript files under ``static/``, ``latest_modified`` likewise.

    Files are compared by content (``FileDigests``, which rereads a file only when its ``stat``
    moved), so each section's digest, and the fingerprint made of them, moves exactly when the
    tarball's entries in that section would.
    """
    sections = {name: hashlib.sha256() for name in (_PUBLISHED, _DRAFTS, _ASSETS, _TRANSCRIPTS)}
    assets, transcripts = _Latest(), _Latest()
    static_prefix = f"{top}/static/"
    for info, path, status in entries(root, top):
        relative = info.name[len(top) + 1 :]
        if relative == "static" or relative.startswith("static/"):
            is_transcript = info.isfile() and relative.endswith(TRANSCRIPT_SUFFIXES)
            section = _TRANSCRIPTS if is_transcript else _ASSETS
            if info.isfile():
                (transcripts if is_transcript else assets).add(info.name[len(static_prefix) :], status)
        else:
            section = _DRAFTS if relative == "drafts" or relative.startswith("drafts/") else _PUBLISHED
        sections[section].update(entry_line(info, path, status, digests))
    hexes = {name: digest.hexdigest() for name, digest in sections.items()}
    latest_asset = (
        str(course_key.make_asset_key("asset", studio_asset_name(assets.name))) if assets.count else None
    )
    return ContentVersions(
        published_version=hexes[_PUBLISHED][:24],
        static_assets=StaticAssets(assets.count, assets.when(), latest_asset),
        transcripts=Transcripts(transcripts.count, transcripts.when()),
        digests=hexes,
    )
