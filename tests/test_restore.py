"""
Restore, item by item, on real peers: an OLX root on disk and moto's S3 server.

Round trips export a real course, restore it under a new course id and export that again; hostile
tarballs are refused with a reason naming the problem and leave no trace in the courses or the bucket.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import restore_requests, restores, storage
from plugin_app.export import export_course
from plugin_app.olx_validation import validate
from plugin_app.tarball_checks import unpack
from tests.builders import SAMPLE_COURSE_ID
from tests.conftest import shared_courses
from tests.tarballs import course_tarball, hostile_tarballs

pytestmark = pytest.mark.django_db
NEW_ID = "course-v1:Restored+R101+2027"


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden staging folders included) with the sha256 of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def bucket_keys(bucket) -> list[str]:
    client, name = bucket
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))


def put(bucket, key: str, data: bytes) -> None:
    client, name = bucket
    client.put_object(Bucket=name, Key=key, Body=data)


def run(course_id: str, object_name: str, user, **options) -> restores.Restored:
    return restores.restore_one("p0-1", course_id, object_name, user, options)


def unpacked_export(course_id: str, into: Path) -> Path:
    """The course exported by the app, unpacked (with the checks, which must find nothing)."""
    into.mkdir()
    with storage.open_reader(export_course(CourseKey.from_string(course_id))) as stream:
        result = unpack(stream, into)
    assert not result.problems and result.course_dir
    return result.course_dir


def _normalized(text: str, key: CourseKey) -> str:
    """The text with every place that names the course ``key`` replaced by a placeholder."""
    org, num, run = (re.escape(part) for part in (key.org, key.course, key.run))
    for pattern, placeholder in (
        (rf"{org}\+{num}\+{run}", "ORG+NUM+RUN"),
        (rf"i4x://{org}/{num}/", "i4x://ORG/NUM/"),
        (rf"{org}\.{num}\.{run}", "ORG.NUM.RUN"),
        (rf'"c4x",(\s*)"{org}",(\s*)"{num}"', r'"c4x",\1"ORG",\2"NUM"'),
        (rf'(org="|"org": "){org}"', r'\1ORG"'),
        (rf'(course="|"course": "){num}"', r'\1NUM"'),
        (rf'(url_name="|"run": "|"course/){run}"', r'\1RUN"'),
    ):
        text = re.sub(pattern, placeholder, text)
    return text


def assert_same_course(before: Path, old: CourseKey, after: Path, new: CourseKey) -> None:
    def files(root: Path, run: str) -> dict[str, Path]:
        out = {}
        for path in root.rglob("*"):
            if path.is_file():
                name = path.relative_to(root).as_posix()
                name = re.sub(
                    rf"^(course/){re.escape(run)}(\.xml)$|^(policies/){re.escape(run)}/", _run_ph, name
                )
                out[name] = path
        return out

    old_files, new_files = files(before, old.run), files(after, new.run)
    assert sorted(old_files) == sorted(new_files)
    for name, path in old_files.items():
        a, b = path.read_bytes(), new_files[name].read_bytes()
        if name.startswith("static/") or a == b:
            assert a == b, name
            continue
        assert _comparable(name, _normalized(a.decode(), old)) == _comparable(
            name, _normalized(b.decode(), new)
        ), name


def _comparable(name: str, text: str) -> object:
    """What a file says: identity files are parsed and written again by the restore (XML in
    canonical form, JSON as data); other text files as they are."""
    if name.endswith(".json"):
        return json.loads(text)
    if name.endswith(".xml"):
        return ElementTree.canonicalize(text, strip_text=True)
    return text


def _run_ph(match: re.Match) -> str:
    return f"{match[1]}RUN{match[2]}" if match[1] else f"{match[3]}RUN/"


def error_count(course_dir: Path) -> int:
    return validate(course_dir).counts.get("ERROR", 0)


# Round trips ----------------------------------------------------------------------------------

COURSES = [pytest.param(None, id="sample")] + [pytest.param(p, id=p.name) for p in shared_courses()]


@pytest.mark.parametrize("source", COURSES)
def test_round_trip_into_a_new_course_id(source, olx_root, bucket, staff, tmp_path):
    if source is not None:
        shutil.copytree(source, olx_root / source.name)
    pointer = (source or olx_root / "sample") / "course.xml"
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', pointer.read_text()))
    old = CourseKey.from_string(f"course-v1:{attrs['org']}+{attrs['course']}+{attrs['url_name']}")
    before = unpacked_export(str(old), tmp_path / "before")

    outcome = run(NEW_ID, storage.export_name(str(old)), staff)

    assert (outcome.outcome, outcome.error) == (restores.RESTORED, "")
    new = CourseKey.from_string(NEW_ID)
    after = unpacked_export(NEW_ID, tmp_path / "after")
    assert_same_course(before, old, after, new)
    assert error_count(after) <= error_count(before)
    assert not (olx_root / ".exportbulk-restore").exists() or not any(
        (olx_root / ".exportbulk-restore").iterdir()
    )


def test_restoring_over_an_existing_course_needs_overwrite_then_replaces_it(olx_root, bucket, staff):
    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID))
    assert run(NEW_ID, name, staff).outcome == restores.RESTORED
    course_dir = olx_root / "Restored+R101+2027"
    (course_dir / "static" / "stray.txt").write_text("added after the restore")
    before = tree_digest(olx_root)

    refused = run(NEW_ID, name, staff)
    assert refused.outcome == restores.FAILED and "set overwrite" in refused.error
    assert tree_digest(olx_root) == before

    assert run(NEW_ID, name, staff, overwrite=True).outcome == restores.RESTORED
    assert not (course_dir / "static" / "stray.txt").exists()


def test_dry_run_reports_findings_and_changes_nothing(olx_root, bucket, staff):
    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID))
    before = tree_digest(olx_root)

    outcome = run(SAMPLE_COURSE_ID, name, staff, dry_run=True, overwrite=True)

    assert outcome.outcome == restores.WOULD_RESTORE
    assert isinstance(outcome.findings, list)
    assert tree_digest(olx_root) == before


def test_blocking_level_fails_an_item_with_findings_at_that_level(olx_root, bucket, staff, settings):
    put(bucket, "t.tar.gz", course_tarball())  # a bare course: olxcleaner warns about it
    findings = run(NEW_ID, "t.tar.gz", staff, dry_run=True).findings
    assert findings, "the bare course should have findings"
    settings.EXPORTBULK_RESTORE_BLOCKING_LEVEL = findings[-1]["level"]

    outcome = run(NEW_ID, "t.tar.gz", staff)

    assert outcome.outcome == restores.FAILED and "olxcleaner found" in outcome.error


# Hostile tarballs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile():
    return hostile_tarballs()


@pytest.mark.parametrize("name", [
    "dotdot", "leading dotdot", "absolute", "drive letter", "backslash", "symlink", "hard link",
    "char device", "block device", "fifo", "gzip bomb", "a million empty members", "no course.xml",
    "two top folders", "file beside the top folder", "XXE", "billion laughs", "truncated gzip", "not gzip",
])  # fmt: skip
def test_hostile_tarball_is_refused_naming_the_problem_and_leaves_nothing(
    name, hostile, olx_root, bucket, staff, settings
):
    # The member limit is met after that many members (each unpacked until then): a smaller one
    # keeps the test short; the million members are still all in the tarball.
    settings.EXPORTBULK_RESTORE_MAX_MEMBERS = 10_000
    data, phrase = hostile[name]
    put(bucket, "hostile.tar.gz", data)
    courses_before, keys_before = tree_digest(olx_root), bucket_keys(bucket)

    outcome = run(NEW_ID, "hostile.tar.gz", staff, overwrite=True)

    assert outcome.outcome == restores.FAILED
    assert phrase in outcome.error, outcome.error
    assert tree_digest(olx_root) == courses_before
    assert bucket_keys(bucket) == keys_before
    assert not Path("/tmp/evil.txt").exists() and not (olx_root.parent / "evil.txt").exists()


def test_every_problem_of_an_item_is_reported_together(olx_root, bucket, staff):
    def extra(tar: tarfile.TarFile) -> None:
        for bad in ("../a", "/b"):
            info = tarfile.TarInfo(bad)
            tar.addfile(info, io.BytesIO())

    put(bucket, "two.tar.gz", course_tarball(extra))
    error = run(SAMPLE_COURSE_ID, "two.tar.gz", staff).error
    assert "'../a'" in error and "'/b'" in error and "set overwrite" in error


# Sources and permissions ----------------------------------------------------------------------


def test_a_missing_bucket_object_fails_its_item_only(olx_root, bucket, staff):
    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID))
    assert run(NEW_ID, storage.export_name("course-v1:No+Such+Course"), staff).error.startswith(
        "Source not found"
    )
    assert run(NEW_ID, name, staff).outcome == restores.RESTORED


def test_backup_sources_resolve_to_the_targets_own_versions(olx_root, bucket, staff):
    folder = restore_requests.backup_folder(SAMPLE_COURSE_ID)
    for stamp in ("20261122T010000Z", "20261123T193000Z"):
        put(bucket, f"{folder}{stamp}.tar.gz", b"x")
    versions = ["latest", "20261122T010000Z", "20200101T000000Z", "yesterday"]
    plan = restores.plan(staff, [(SAMPLE_COURSE_ID, f"backup:{v}") for v in versions], {})
    assert [p.object_name for p in plan[:2]] == [
        f"{folder}20261123T193000Z.tar.gz",
        f"{folder}20261122T010000Z.tar.gz",
    ]
    assert plan[2].error.startswith("Source not found") and plan[3].error.startswith("Invalid source")


def test_permissions_author_stranger_and_creator(olx_root, bucket, author, stranger, staff):
    other = "course-v1:Other+B+2026"
    shutil.copytree(olx_root / "sample", olx_root / "b")
    (olx_root / "b" / "course.xml").write_text('<course url_name="2026" org="Other" course="B"/>')
    export = storage.export_name(SAMPLE_COURSE_ID)
    pairs = [(SAMPLE_COURSE_ID, export), (other, export), ("course-v1:New+C+1", export)]

    author_plan = restores.plan(author, pairs, {})
    assert author_plan[0].error == ""
    assert author_plan[1].error == author_plan[2].error == restores.PERMISSION_DENIED
    stranger_plan = restores.plan(stranger, pairs, {})
    # Existing B and missing C answer alike: nothing tells a stranger which exists.
    assert {p.error for p in stranger_plan} == {restores.PERMISSION_DENIED}
    staff_plan = restores.plan(staff, pairs, {})
    assert [p.error for p in staff_plan] == ["", "", ""]


def test_a_source_of_another_course_needs_access_to_that_course(olx_root, bucket, author):
    pairs = [
        (SAMPLE_COURSE_ID, storage.export_name("course-v1:Other+B+2026")),
        (SAMPLE_COURSE_ID, "notes.tar.gz"),
    ]
    first, second = restores.plan(author, pairs, {})
    assert first.error.startswith("Permission denied: you may not read the source")
    assert second.error.startswith("Invalid source")


@pytest.mark.parametrize("raw, field", [
    (None, "items"), ([], "items"), (["x"], "items[0]"), ([{"source": "a"}], "items[0].course_id"),
    ([{"source": "", "course_id": "c"}], "items[0].source"),
    ([{"source": "a", "course_id": "c"}, {"source": "b", "course_id": "c"}], "once per request"),
])  # fmt: skip
def test_malformed_items_are_rejected_naming_the_field(raw, field):
    with pytest.raises(restore_requests.RestoreRejected, match=re.escape(field)):
        restore_requests.parse_items(raw)
