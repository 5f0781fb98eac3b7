"""
The restore API in-process (eager workers), on moto's S3 server and an OLX root on disk.

Transactional tests: the eager run's items read the process and its owner through a
connection of their own; they run one by one in the test's thread (``items_in_this_thread``).
"""

from __future__ import annotations

import io
import json

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app.export import export_course
from plugin_app.models import BulkProcess
from tests.builders import SAMPLE_COURSE_ID
from tests.tarballs import big_course_tarball, course_tarball, hostile_tarballs
from tests.test_restore import bucket_keys, tree_digest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("items_in_this_thread")]
URL = "/api/courses/v0/restore/"
NEW_ID = "course-v1:Api+R1+2027"


def status(client, process_id: str) -> dict:
    answer = client.get(f"{URL}status/{process_id}")
    assert answer.status_code == 200, answer.content
    return answer.json()["result"]


def without_reports(keys: list[str]) -> list[str]:
    """The bucket's keys but the process reports (the outcome each process leaves on purpose)."""
    return [key for key in keys if not key.startswith("reports/")]


def test_json_restore_from_an_export_into_a_new_course(client_for, staff, olx_root, bucket):
    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID))
    client = client_for(staff)

    answer = client.post(URL, {"items": [{"source": name, "course_id": NEW_ID}]}, format="json")

    assert answer.status_code == 202, answer.content
    result = status(client, answer.json()["processId"])
    assert result["status"] == "Completed" and result["successCount"] == 1
    (item,) = result["items"]
    assert item == {"course_id": NEW_ID, "source": name, "status": "restored", "reason": "",
                    "findings": item["findings"], "findings_total": item["findings_total"]}  # fmt: skip
    assert isinstance(item["findings"], list)
    assert (olx_root / "Api+R1+2027" / "course.xml").read_text().count('org="Api"') == 1
    listed = client.get(f"{URL}status/list").json()["result"]
    assert [p["processId"] for p in listed["restores"]] == [answer.json()["processId"]]


def test_multipart_restore_stages_the_files_and_removes_them_at_the_end(client_for, staff, olx_root, bucket):
    client = client_for(staff)
    keys_before = bucket_keys(bucket)
    files = [io.BytesIO(course_tarball()), io.BytesIO(course_tarball())]
    files[0].name, files[1].name = "one.tar.gz", "two.tar.gz"
    items = [{"source": "one.tar.gz", "course_id": NEW_ID},
             {"source": "two.tar.gz", "course_id": "course-v1:Api+R2+2027"}]  # fmt: skip

    answer = client.post(URL, {"file": files, "items": json.dumps(items)}, format="multipart")

    assert answer.status_code == 202, answer.content
    result = status(client, answer.json()["processId"])
    assert [i["status"] for i in result["items"]] == ["restored", "restored"]
    assert (olx_root / "Api+R2+2027" / "course" / "2027.xml").is_file()
    assert without_reports(bucket_keys(bucket)) == keys_before


def test_staged_uploads_are_removed_when_the_process_fails(client_for, staff, olx_root, bucket, monkeypatch):
    from plugin_app import lifecycle

    monkeypatch.setattr(lifecycle, "dispatch", lambda process_id: None)  # queued; no worker runs it
    client = client_for(staff)
    upload = io.BytesIO(course_tarball())
    upload.name = "one.tar.gz"
    items = [{"source": "one.tar.gz", "course_id": NEW_ID}]
    answer = client.post(URL, {"file": [upload], "items": json.dumps(items)}, format="multipart")
    process_id = answer.json()["processId"]
    assert any(key.startswith("restores/") for key in bucket_keys(bucket))

    lifecycle.fail_process(process_id, "The process could not run (WorkerLostError).")

    assert status(client, process_id)["status"] == "Failed"
    assert not any(key.startswith("restores/") for key in bucket_keys(bucket))
    assert not (olx_root / "Api+R1+2027").exists()


def test_dry_run_lists_findings_and_leaves_the_courses_byte_identical(client_for, staff, olx_root, bucket):
    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID))
    before = tree_digest(olx_root)
    client = client_for(staff)
    body = {"items": [{"source": name, "course_id": SAMPLE_COURSE_ID}], "dry_run": True, "overwrite": True}

    result = status(client, client.post(URL, body, format="json").json()["processId"])

    assert result["items"][0]["status"] == "would restore"
    assert "findings" in result["items"][0]
    assert tree_digest(olx_root) == before


@pytest.mark.parametrize(
    "name", ["dotdot", "symlink", "hard link", "XXE", "billion laughs", "truncated gzip"]
)
def test_hostile_upload_is_refused_with_its_reason_and_leaves_nothing(
    name, client_for, staff, olx_root, bucket
):
    data, phrase = hostile_tarballs(heavy=False)[name]
    courses, keys = tree_digest(olx_root), bucket_keys(bucket)
    upload = io.BytesIO(data)
    upload.name = "evil.tar.gz"
    items = json.dumps([{"source": "evil.tar.gz", "course_id": NEW_ID}])

    staff_client = client_for(staff)
    answer = staff_client.post(URL, {"file": [upload], "items": items}, format="multipart")

    result = status(staff_client, answer.json()["processId"])
    (item,) = result["items"]
    assert item["status"] == "failed" and phrase in item["reason"], item
    assert tree_digest(olx_root) == courses
    assert without_reports(bucket_keys(bucket)) == keys


@pytest.mark.parametrize("body, message", [
    ([1, 2], "JSON object"),
    ({}, "items"),
    ({"items": "x"}, "items"),
    ({"items": [{"source": "a"}]}, "items[0].course_id"),
    ({"items": [{"source": "a", "course_id": "c"}], "dry_run": "yes"}, "dry_run"),
])  # fmt: skip
def test_a_request_that_cannot_start_is_400_naming_the_field(
    body, message, client_for, staff, olx_root, bucket
):
    answer = client_for(staff).post(URL, body, format="json")
    assert answer.status_code == 400 and message in answer.json()["developer_message"]
    assert not BulkProcess.objects.exists()


def test_multipart_items_must_be_json_and_name_every_file(client_for, staff, olx_root, bucket):
    client = client_for(staff)
    upload = io.BytesIO(course_tarball())
    upload.name = "a.tar.gz"
    bad = client.post(URL, {"file": [upload], "items": "not json"}, format="multipart")
    assert bad.status_code == 400 and "items" in bad.json()["developer_message"]
    upload.seek(0)
    other = json.dumps([{"source": "b.tar.gz", "course_id": NEW_ID}])
    unused = client.post(URL, {"file": [upload], "items": other}, format="multipart")
    assert unused.status_code == 400 and "'a.tar.gz'" in unused.json()["developer_message"]
    assert bucket_keys(bucket) == [] and not BulkProcess.objects.exists()


def test_a_body_over_the_limit_is_413_before_it_is_read(client_for, staff, olx_root, bucket, settings):
    settings.EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES = 10_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000  # the form's other fields
    upload = io.BytesIO(b"\0" * 20_000)
    upload.name = "big.tar.gz"
    items = json.dumps([{"source": "big.tar.gz", "course_id": NEW_ID}])

    answer = client_for(staff).post(URL, {"file": [upload], "items": items}, format="multipart")

    assert answer.status_code == 413
    assert answer.json()["developer_message"].endswith("bytes; the limit is 11000.")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000  # the body passes; its tarballs do not
    upload.seek(0)
    answer = client_for(staff).post(URL, {"file": [upload], "items": items}, format="multipart")
    assert (
        answer.status_code == 413 and "at most 10000 bytes of tarballs" in answer.json()["developer_message"]
    )
    assert bucket_keys(bucket) == [] and not BulkProcess.objects.exists()


def test_a_multi_megabyte_tarball_is_restored_through_multipart(
    client_for, staff, olx_root, bucket, settings
):
    """Over Django's in-memory limit (2.5 MiB): the file part streams to a temporary file."""
    data, noise = big_course_tarball(5 * 1024**2)
    assert len(data) > 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    upload = io.BytesIO(data)
    upload.name = "big.tar.gz"
    items = json.dumps([{"source": "big.tar.gz", "course_id": NEW_ID}])

    answer = client_for(staff).post(URL, {"file": [upload], "items": items}, format="multipart")

    assert answer.status_code == 202, answer.content
    assert status(client_for(staff), answer.json()["processId"])["items"][0]["status"] == "restored"
    assert (olx_root / "Api+R1+2027" / "static" / "noise.bin").read_bytes() == noise


def test_a_json_restore_is_held_to_djangos_memory_limit(client_for, staff, olx_root, bucket, settings):
    """JSON is read into memory: the tarballs' limit is for multipart bodies only."""
    body = {"items": [{"source": "x.tar.gz", "course_id": NEW_ID}], "padding": "x" * 3 * 1024**2}

    answer = client_for(staff).post(URL, body, format="json")

    assert answer.status_code == 413
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert answer.json()["developer_message"].endswith(f"bytes; the limit is {limit}.")
    assert not BulkProcess.objects.exists()


def test_a_stranger_learns_nothing_about_whether_a_course_exists(
    client_for, stranger, author, olx_root, bucket
):
    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID))
    items = [
        {"source": name, "course_id": SAMPLE_COURSE_ID},
        {"source": name, "course_id": "course-v1:No+Such+1"},
    ]
    for user in (stranger, author):
        client = client_for(user)
        result = status(
            client, client.post(URL, {"items": items, "overwrite": True}, format="json").json()["processId"]
        )
        reasons = [i["reason"] for i in result["items"]]
        if user is stranger:
            assert reasons[0] == reasons[1] and reasons[0].startswith("Permission denied")
        else:  # the author may restore over its own course, not create one
            assert reasons[1].startswith("Permission denied")
    assert client_for(stranger).get(f"{URL}status/{result['processId']}").status_code == 404
