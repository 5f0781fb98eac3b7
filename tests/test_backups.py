"""
Backups on real peers: OLX courses on disk, moto's S3 server over HTTP.

Runs here are driven item by item as the lifecycle drives them (``run_course`` then
``finish_run``), so that every rule of the backup kind is checked without a worker.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid

import pytest
from django.utils import timezone

from plugin_app import backups, course_holds, storage
from plugin_app.data import ItemStatus, ProcessKind
from plugin_app.models import BackupCourse, BackupVersion, BulkItem, BulkProcess
from tests.builders import SAMPLE_COURSE_ID

pytestmark = pytest.mark.django_db


def add_course(root, org: str) -> str:
    """A copy of the sample course under another org; its course id."""
    shutil.copytree(root / "sample", root / org)
    pointer = root / org / "course.xml"
    pointer.write_text(re.sub(r'org="[^"]*"', f'org="{org}"', pointer.read_text()))
    return SAMPLE_COURSE_ID.replace("ExportBulk", org)


@pytest.fixture
def courses(olx_root, bucket) -> list[str]:
    return [SAMPLE_COURSE_ID, add_course(olx_root, "OrgB"), add_course(olx_root, "OrgC")]


def run(user, course_ids: list[str], changed_only: bool = True) -> tuple[BulkProcess, dict]:
    """One backup run of the courses; the process and its manifest."""
    process = BulkProcess.objects.create(kind=ProcessKind.BACKUP, owner=user)
    for position, course_id in enumerate(course_ids):
        item = BulkItem.objects.create(process=process, position=position, course_id=course_id)
        outcome = backups.backup_course(
            course_id, process.process_id.hex, f"{process.pk}:{item.pk}", changed_only
        )
        item.status, item.result, item.error = outcome.status, outcome.result, outcome.error
        item.save()
    backups.finish_run(process)
    return process, read_manifest(process)


def read_manifest(process) -> dict:
    with storage.get_storage().open(backups.manifest_name(process), "rb") as stream:
        return json.load(stream)


def statuses(manifest: dict) -> dict[str, str]:
    return {entry["course_id"]: entry["status"] for entry in manifest["courses"]}


def objects(bucket, prefix: str = "backups/") -> dict[str, bytes]:
    client, name = bucket
    listing = client.list_objects_v2(Bucket=name, Prefix=prefix).get("Contents", [])
    return {obj["Key"]: client.get_object(Bucket=name, Key=obj["Key"])["Body"].read() for obj in listing}


def test_second_run_exports_nothing_and_a_change_exports_exactly_that_course(
    staff, courses, olx_root, bucket
):
    _, first = run(staff, courses)
    assert set(statuses(first).values()) == {"exported"}
    _, second = run(staff, courses)
    assert statuses(second) == dict.fromkeys(courses, "unchanged")
    # An unchanged course names the backup that is still current.
    assert [e["key"] for e in second["courses"]] == [e["key"] for e in first["courses"]]

    changes = {
        "file": lambda: (olx_root / "OrgB" / "about" / "overview.html").write_text("<p>changed</p>"),
        "asset": lambda: (olx_root / "OrgC" / "static" / "new.txt").write_text("new asset"),
        "policy": lambda: (olx_root / "sample" / "policies" / "2026" / "policy.json").write_text(
            json.dumps({"course/2026": {"display_name": "Policy changed"}})
        ),
    }
    for changed, change in zip(courses[1:] + courses[:1], changes.values(), strict=True):
        change()
        _, manifest = run(staff, courses)
        assert statuses(manifest) == {c: "exported" if c == changed else "unchanged" for c in courses}

    # changed_only false: everything again.
    _, manifest = run(staff, courses, changed_only=False)
    assert set(statuses(manifest).values()) == {"exported"}


def test_every_object_matches_its_manifest_and_is_studios_layout(staff, courses, bucket):
    import io
    import tarfile

    _, manifest = run(staff, courses)
    stored = objects(bucket)
    for entry in manifest["courses"]:
        data = stored[entry["key"]]
        assert len(data) == entry["size"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert re.fullmatch(
            rf"backups/{re.escape(entry['course_id'])}/\d{{8}}T\d{{6}}\.\d{{6}}Z\.tar\.gz", entry["key"]
        )
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert "2026/course.xml" in tar.getnames()
    runs = [key for key in stored if key.startswith("backups/runs/")]
    assert len(runs) == 1 and runs[0].endswith(f"-{manifest['processId']}.json")


def test_retention_keeps_the_newest_versions_of_changed_courses_only(
    staff, courses, olx_root, bucket, settings
):
    settings.EXPORTBULK_BACKUP_KEEP = 2
    manifests = []
    for n in range(4):
        (olx_root / "sample" / "static" / "counter.txt").write_text(str(n))
        manifests.append(run(staff, courses)[1])
    written = [statuses_key(m, SAMPLE_COURSE_ID) for m in manifests]
    stored = objects(bucket)
    assert sorted(k for k in stored if k.startswith(f"backups/{SAMPLE_COURSE_ID}/")) == written[2:]
    for other in courses[1:]:  # exported once, then unchanged: its one version stays
        assert len([k for k in stored if k.startswith(f"backups/{other}/")]) == 1
    # Each deletion is in the manifest of the run that made it, and nowhere else.
    assert [[d["key"] for d in m["deleted"]] for m in manifests] == [[], [], [written[0]], [written[1]]]
    assert BackupVersion.objects.filter(deleted_at__isnull=True).count() == 2 + 2


def statuses_key(manifest: dict, course_id: str) -> str:
    return next(e["key"] for e in manifest["courses"] if e["course_id"] == course_id)


def test_max_age_deletes_old_versions_but_never_the_newest(staff, courses, olx_root, bucket, settings):
    settings.EXPORTBULK_BACKUP_MAX_AGE_DAYS = 1
    run(staff, courses[:1])
    BackupVersion.objects.update(created=timezone.now() - timezone.timedelta(days=5))
    _, manifest = run(staff, courses[:1])  # unchanged: the only, old version is the newest
    assert manifest["deleted"] == []
    assert len([k for k in objects(bucket) if not k.startswith("backups/runs/")]) == 1
    (olx_root / "sample" / "static" / "new.txt").write_text("x")
    _, manifest = run(staff, courses[:1])
    assert len(manifest["deleted"]) == 1
    assert [k for k in objects(bucket) if not k.startswith("backups/runs/")] == [
        manifest["courses"][0]["key"]
    ]


def test_a_failed_course_does_not_stop_the_others_and_keeps_its_versions(
    staff, courses, olx_root, bucket, settings
):
    settings.EXPORTBULK_BACKUP_KEEP = 1
    run(staff, courses)
    kept = objects(bucket, f"backups/{courses[1]}/")
    shutil.rmtree(olx_root / "OrgB")  # the course is gone from the platform
    (olx_root / "OrgC" / "static" / "new.txt").write_text("x")
    _, manifest = run(staff, [*courses, "not a key", "ExportBulk/Old/run"])
    assert statuses(manifest) == {
        courses[0]: "unchanged",
        courses[1]: "failed",
        courses[2]: "exported",
        "not a key": "failed",
        "ExportBulk/Old/run": "failed",
    }
    reasons = {e["course_id"]: e.get("reason") for e in manifest["courses"]}
    assert reasons[courses[1]] == "Course not found."
    assert reasons["ExportBulk/Old/run"] == "The course id cannot be used as a storage object name."
    assert objects(bucket, f"backups/{courses[1]}/") == kept  # its newest good backup stays
    course = BackupCourse.objects.get(course_id=courses[1])
    assert course.last_failure and course.last_failure_reason == "Course not found."
    assert not any("Old" in key for key in objects(bucket))


def test_a_course_held_by_another_run_is_not_exported_twice(staff, courses, bucket):
    with course_holds.held(courses[0], "other-run") as course:
        assert course is not None
        outcome = backups.backup_course(courses[0], uuid.uuid4().hex, "this-run")
    assert outcome.status == ItemStatus.FAILED and outcome.error == backups.BUSY
    assert objects(bucket) == {}
    assert backups.backup_course(courses[0], uuid.uuid4().hex, "this-run").status == ItemStatus.SUCCESS


def test_what_a_killed_runner_left_is_removed_before_the_next_backup(staff, courses, bucket):
    """A runner killed mid-upload leaves a recorded, incomplete version and an open multipart upload."""
    client, name = bucket
    course = BackupCourse.objects.create(course_id=courses[0])
    key = backups.version_name(courses[0], timezone.now())
    BackupVersion.objects.create(
        course=course, name=key, created=timezone.now(), process_id="dead", fingerprint="x"
    )
    upload = client.create_multipart_upload(Bucket=name, Key=key)
    client.upload_part(Bucket=name, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"partial")

    outcome = backups.backup_course(courses[0], uuid.uuid4().hex, "next-run")
    assert outcome.result["outcome"] == "exported"
    assert client.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
    assert list(objects(bucket)) == [outcome.result["key"]]
    assert list(BackupVersion.objects.values_list("name", flat=True)) == [outcome.result["key"]]


def test_a_backup_removed_from_the_bucket_is_not_trusted(staff, courses, bucket):
    client, name = bucket
    _, first = run(staff, courses[:1])
    client.delete_object(Bucket=name, Key=first["courses"][0]["key"])
    _, second = run(staff, courses[:1])
    assert statuses(second) == {courses[0]: "exported"}


def test_storage_failure_fails_the_course_and_leaves_no_object(staff, courses, bucket, settings):
    settings.EXPORTBULK_S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.EXPORTBULK_LEASE_SECONDS = 60
    outcome = backups.backup_course(courses[0], uuid.uuid4().hex, "run")
    assert outcome.status == ItemStatus.FAILED and outcome.error.startswith("Storage error")
    assert not BackupVersion.objects.exists()


def test_present_item_shows_the_status_api_fields(staff, courses, bucket):
    process, _ = run(staff, [*courses[:1], "not a key"])
    exported, failed = process.items.order_by("position")
    shown = backups.present_item(exported, detail=True)
    assert (
        set(shown) == {"course_id", "status", "key", "size", "sha256", "url"}
        and shown["status"] == "exported"
    )
    assert backups.present_item(exported, detail=False).keys() == shown.keys() - {"url"}
    assert backups.present_item(failed, True) == {
        "course_id": "not a key",
        "status": "failed",
        "reason": "Invalid course key.",
    }


def planned(user, course_ids: list[str]) -> dict[str, BulkItem]:
    """A run as the lifecycle runs it (its plan, then its items); its items by course."""
    process_id = backups.start_backup(user, course_ids)
    return {item.course_id: item for item in BulkItem.objects.filter(process__process_id=process_id)}


@pytest.mark.usefixtures("items_in_this_thread")
def test_the_plan_settles_unchanged_courses_without_running_their_items(staff, courses, olx_root, bucket):
    planned(staff, courses)
    (olx_root / "OrgB" / "about" / "overview.html").write_text("<p>changed</p>")
    items = planned(staff, courses)
    assert {c: i.result["outcome"] for c, i in items.items()} == {
        c: "exported" if c == courses[1] else "unchanged" for c in courses
    }
    # Settled in bulk: never claimed (attempts 0); the changed course ran as an item.
    assert {c: i.attempts for c, i in items.items()} == {c: int(c == courses[1]) for c in courses}
    assert not BackupCourse.objects.exclude(held_by="").exists()  # every hold given back


@pytest.mark.usefixtures("items_in_this_thread")
def test_the_plan_leaves_held_incomplete_and_missing_courses_to_their_items(staff, courses, bucket):
    client, name = bucket
    first = planned(staff, courses)
    dead = BackupVersion.objects.create(  # a killed runner's version: the item cleans it up
        course=BackupCourse.objects.get(course_id=courses[1]),
        name=backups.version_name(courses[1], timezone.now()),
        created=timezone.now(),
        process_id="dead",
        fingerprint="x",
    )
    client.delete_object(Bucket=name, Key=first[courses[2]].result["key"])  # not trusted
    with course_holds.held(courses[0], "other-run"):
        items = planned(staff, courses)
    assert items[courses[0]].error == backups.BUSY  # the other run's, never exported twice
    assert items[courses[1]].result["outcome"] == "unchanged" and items[courses[1]].attempts == 1
    assert not BackupVersion.objects.filter(pk=dead.pk).exists()
    assert items[courses[2]].result["outcome"] == "exported"


def test_existing_finds_the_stored_names_by_listing(bucket):
    client, name = bucket
    stored = [f"backups/course-v1:O+C{n}+R/{n}.tar.gz" for n in range(3)]
    for key in [*stored, "backups/course-v1:O+C9+R/other.tar.gz", "backups/runs/x.json"]:
        client.put_object(Bucket=name, Key=key, Body=b"x")
    missing = "backups/course-v1:O+C1+R/gone.tar.gz"
    assert storage.existing([*stored[1:], missing]) == set(stored[1:])
    assert storage.existing([stored[0]]) == {stored[0]}
    assert storage.existing([]) == set()


@pytest.mark.usefixtures("items_in_this_thread")
@pytest.mark.parametrize(
    ("module", "step", "error"),
    [
        (storage, "existing", ConnectionError("bucket unreachable")),
        # As a database comparing course ids without their case made it: not a transient error.
        (backups, "_newest_complete", KeyError("course-v1:exportbulk+sample+2026")),
    ],
    ids=["bucket", "any-error"],
)
def test_a_plan_failing_leaves_every_course_to_its_item(
    staff, courses, bucket, monkeypatch, module, step, error
):
    planned(staff, courses)

    def fail(*args):
        raise error

    monkeypatch.setattr(module, step, fail)
    items = planned(staff, courses)
    assert {c: (i.result["outcome"], i.attempts) for c, i in items.items()} == dict.fromkeys(
        courses, ("unchanged", 1)
    )
    assert not BackupCourse.objects.exclude(held_by="").exists()


def test_a_fresh_database_resumes_change_awareness_from_the_bucket(staff, courses, bucket):
    """The next run after the database is lost finds the courses unchanged (issue 25.4)."""
    _process, manifest = run(staff, courses[:2])
    assert set(statuses(manifest).values()) == {"exported"}
    BackupVersion.objects.all().delete()
    BackupCourse.objects.all().delete()

    _process, again = run(staff, courses[:2])
    assert statuses(again) == dict.fromkeys(courses[:2], "unchanged")
    assert [e["key"] for e in again["courses"]] == [e["key"] for e in manifest["courses"]]
    assert [e["fingerprint"] for e in again["courses"]] == [e["fingerprint"] for e in manifest["courses"]]


def test_a_version_no_manifest_lists_is_indexed_but_not_trusted_as_current(staff, courses, bucket):
    """An object whose run never wrote its manifest has no known fingerprint: exported again."""
    client, name = bucket
    _process, manifest = run(staff, courses[:1])
    client.delete_object(Bucket=name, Key=backups.manifest_name(_process))
    BackupVersion.objects.all().delete()
    BackupCourse.objects.all().delete()

    _process, again = run(staff, courses[:1])
    assert statuses(again) == {courses[0]: "exported"}
    orphan = BackupVersion.objects.get(name=manifest["courses"][0]["key"])
    assert (orphan.fingerprint, orphan.size) == ("", manifest["courses"][0]["size"])
