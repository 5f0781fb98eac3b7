"""
Course fingerprints: equal when nothing an export holds changed, different on any change.

``olx_directory`` on real files (including a rewrite of the same size with the mtime set back,
which a stat-only shortcut would miss); ``modulestore`` in test_content_versions_modulestore.py.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import fingerprint as fingerprint_module
from plugin_app.backends.base import CourseNotFound
from plugin_app.backends.olx_directory import OlxDirectoryBackend
from tests.builders import SAMPLE_COURSE_ID

COURSE = CourseKey.from_string(SAMPLE_COURSE_ID)


@pytest.fixture
def backend(olx_root, monkeypatch):
    """The backend on a copy of the sample course old enough for its digests to be cached."""
    monkeypatch.setattr(fingerprint_module, "RACY_MARGIN_NS", 200_000_000)
    time.sleep(0.3)
    return OlxDirectoryBackend(olx_root)


def test_unchanged_course_has_a_stable_fingerprint(backend):
    first = backend.fingerprint(COURSE)
    assert first.startswith("olx-sha256-v2:")
    assert backend.fingerprint(COURSE) == first
    assert OlxDirectoryBackend(backend.root).fingerprint(COURSE) == first  # no state needed


@pytest.mark.parametrize(
    "change",
    [
        "same_size_same_mtime",
        "new_asset",
        "policy",
        "removed_file",
        "executable_bit",
        "renamed_file",
    ],
)
def test_any_change_an_export_would_carry_changes_the_fingerprint(backend, sample_course, change):
    handout = sample_course / "static" / "handout.pdf"
    policy = sample_course / "policies" / "2026" / "policy.json"
    before = backend.fingerprint(COURSE)
    assert backend.fingerprint(COURSE) == before  # from cached digests: the change must show anyway
    if change == "same_size_same_mtime":
        status = os.stat(policy)
        data = policy.read_bytes()
        policy.write_bytes(data.replace(b"2026", b"2027", 1))
        os.utime(policy, ns=(status.st_atime_ns, status.st_mtime_ns))
        assert os.stat(policy).st_size == status.st_size and os.stat(policy).st_mtime_ns == status.st_mtime_ns
    elif change == "new_asset":
        (sample_course / "static" / "new.txt").write_text("new")
    elif change == "policy":
        data = json.loads(policy.read_text())
        data["course/2026"]["display_name"] = "Renamed"
        policy.write_text(json.dumps(data))
    elif change == "removed_file":
        handout.unlink()
    elif change == "executable_bit":
        handout.chmod(0o755)
    elif change == "renamed_file":
        handout.rename(handout.with_name("handout2.pdf"))
    assert backend.fingerprint(COURSE) != before


def test_old_files_are_hashed_once_and_recent_ones_every_time(backend, sample_course, monkeypatch):
    files = [p for p in sample_course.rglob("*") if p.is_file()]
    fresh = sample_course / "static" / "fresh.txt"
    fresh.write_text("written just now")
    reads: list[str] = []
    real = fingerprint_module.hashlib.file_digest

    def counting(source, name):
        reads.append(source.name)
        return real(source, name)

    monkeypatch.setattr(fingerprint_module.hashlib, "file_digest", counting)
    first = backend.fingerprint(COURSE)
    assert len(reads) == len(files) + 1
    reads.clear()
    assert backend.fingerprint(COURSE) == first
    # Too recent to trust a cached digest: its next write could keep the same ctime tick.
    assert reads == [str(fresh)]


def test_fingerprint_of_a_missing_course_is_course_not_found(backend):
    with pytest.raises(CourseNotFound):
        backend.fingerprint(CourseKey.from_string("course-v1:No+Such+Course"))
