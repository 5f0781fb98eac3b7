"""
Course fingerprints: equal when nothing an export holds changed, different on any change.

``olx_directory`` on real files (including a rewrite of the same size with the mtime set back,
which a stat-only shortcut would miss); ``modulestore`` on fakes of the exact edx-platform
lookups it makes (the platform cannot run here).
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from datetime import datetime

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import fingerprint as fingerprint_module
from plugin_app.backends.base import CourseNotFound
from plugin_app.backends.modulestore import ModulestoreBackend
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
    assert first.startswith("olx-sha256-v1:")
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


# modulestore, on fakes of the exact platform lookups ------------------------------------------


class FakeQuery:
    def __init__(self, rows: list[tuple], match):
        self.rows, self.match = rows, match

    def filter(self, **lookup):
        return FakeQuery([row for row in self.rows if self.match(row, lookup)], self.match)

    def values_list(self, *fields):
        self.fields = fields
        return self

    def order_by(self, *fields):
        return self

    def first(self):
        return self.rows[0][1:] if self.rows else None

    def __iter__(self):
        return iter(row[1:] for row in self.rows)


@pytest.fixture
def platform(monkeypatch):
    """The three platform lookups, as fakes holding one course; returns its mutable state."""
    state = {
        "index": [(COURSE, "draft1", "pub1", "")],
        "assets": [
            {"asset_key": "asset-v1:a", "length": 10, "uploadDate": datetime(2026, 1, 1), "locked": False},
        ],
        "transcripts": [(str(COURSE), "vid1", "en", "srt", datetime(2026, 1, 1), "t/en.srt")],
    }

    def index_objects():
        return FakeQuery(state["index"], lambda row, lookup: row[0] == lookup["course_id"])

    def transcript_objects():
        return FakeQuery(
            state["transcripts"], lambda row, lookup: row[0] == lookup["video__courses__course_id"]
        )

    store = types.SimpleNamespace(
        get_all_content_for_course=lambda key: (state["assets"], len(state["assets"]))
    )
    modules = {
        "common.djangoapps.split_modulestore_django.models": types.SimpleNamespace(
            SplitModulestoreCourseIndex=types.SimpleNamespace(
                objects=types.SimpleNamespace(filter=lambda **kw: index_objects().filter(**kw))
            )
        ),
        "edxval.models": types.SimpleNamespace(
            VideoTranscript=types.SimpleNamespace(
                objects=types.SimpleNamespace(filter=lambda **kw: transcript_objects().filter(**kw))
            )
        ),
        "xmodule.contentstore.django": types.SimpleNamespace(contentstore=lambda: store),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return state


@pytest.mark.parametrize(
    "change",
    ["draft_edit", "publish", "new_asset", "replaced_asset", "asset_locked", "transcript_replaced"],
)
def test_modulestore_fingerprint_moves_with_structure_assets_and_transcripts(platform, change):
    backend = ModulestoreBackend()
    before = backend.fingerprint(COURSE)
    assert before.startswith("modulestore-v1:") and backend.fingerprint(COURSE) == before
    if change == "draft_edit":
        platform["index"] = [(COURSE, "draft2", "pub1", "")]
    elif change == "publish":
        platform["index"] = [(COURSE, "draft2", "pub2", "")]
    elif change == "new_asset":
        platform["assets"] = [*platform["assets"], {"asset_key": "asset-v1:b", "length": 1}]
    elif change == "replaced_asset":
        platform["assets"] = [{**platform["assets"][0], "uploadDate": datetime(2026, 2, 1)}]
    elif change == "asset_locked":
        platform["assets"] = [{**platform["assets"][0], "locked": True}]
    elif change == "transcript_replaced":
        platform["transcripts"] = [(str(COURSE), "vid1", "en", "srt", datetime(2026, 3, 1), "t/en2.srt")]
    assert backend.fingerprint(COURSE) != before


def test_modulestore_fingerprint_of_a_course_without_an_index_is_course_not_found(platform):
    platform["index"] = []
    with pytest.raises(CourseNotFound):
        ModulestoreBackend().fingerprint(COURSE)
