"""
The backup API and the ``exportbulk_backup`` command, in-process (no broker: the lifecycle runs
the items at once, in this thread), on OLX courses and moto's S3 server over HTTP.
"""

from __future__ import annotations

import hashlib
import io
import shutil

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from plugin_app.models import BulkProcess
from tests.builders import SAMPLE_COURSE_ID
from tests.test_backups import add_course

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("items_in_this_thread")]

BACKUP = "/api/courses/v0/backup/"
STATUS = "/api/courses/v0/backup/status/"


@pytest.fixture
def other_course(olx_root, bucket) -> str:
    return add_course(olx_root, "OtherOrg")


def start(client, body: dict) -> dict:
    answer = client.post(BACKUP, body, format="json")
    assert answer.status_code == 202, answer.content
    status = client.get(STATUS + answer.json()["processId"])
    assert status.status_code == 200
    return status.json()["result"]


def by_course(result: dict) -> dict[str, dict]:
    return {item["course_id"]: item for item in result["items"]}


def test_backup_runs_and_reports_each_course_then_finds_them_unchanged(client_for, staff, other_course):
    client = client_for(staff)
    first = start(client, {"all": True})
    assert first["status"] == "Completed" and first["totalCount"] == 2 == first["successCount"]
    items = by_course(first)
    assert {i["status"] for i in items.values()} == {"exported"}
    for item in items.values():
        data = requests.get(item["url"], timeout=30).content
        assert len(data) == item["size"] and hashlib.sha256(data).hexdigest() == item["sha256"]
        assert item["key"].startswith(f"backups/{item['course_id']}/")
    manifest = requests.get(first["manifest"], timeout=30).json()
    assert [c["sha256"] for c in manifest["courses"]] == [i["sha256"] for i in first["items"]]

    second = by_course(start(client, {"courses": [SAMPLE_COURSE_ID, other_course]}))
    assert {c: i["status"] for c, i in second.items()} == dict.fromkeys(items, "unchanged")
    assert second[SAMPLE_COURSE_ID]["key"] == items[SAMPLE_COURSE_ID]["key"]
    again = by_course(start(client, {"org": "OtherOrg", "changed_only": False}))
    assert list(again) == [other_course] and again[other_course]["status"] == "exported"

    listing = client.get(STATUS + "list").json()["result"]
    assert listing["count"] == 3 and len(listing["backups"]) == 3
    far = client.get(STATUS + "list?page=233907529960826339328")  # past any SQL offset
    assert far.status_code == 400 and far.json()["params"]["err"] == "INVALID_REQUEST"

    versions = client.get(f"/api/courses/v0/backup/versions/{other_course}").json()["versions"]
    assert [v["key"] for v in versions] == [again[other_course]["key"], items[other_course]["key"]]


def test_courses_the_caller_may_not_author_fail_with_the_reason(client_for, author, other_course):
    result = start(client_for(author), {"courses": [SAMPLE_COURSE_ID, other_course, "ExportBulk/Old/run"]})
    items = by_course(result)
    assert items[SAMPLE_COURSE_ID]["status"] == "exported"
    assert items[other_course] == {
        "course_id": other_course,
        "status": "failed",
        "reason": "Permission denied: you do not have Studio write access to this course.",
    }
    assert items["ExportBulk/Old/run"]["status"] == "failed"
    assert client_for(author).get(f"/api/courses/v0/backup/versions/{other_course}").status_code == 403


def test_an_author_removed_from_a_course_gets_no_url_nor_manifest_of_its_backup(
    client_for, author, other_course
):
    from django.contrib.auth.models import Group
    from opaque_keys.edx.keys import CourseKey

    from plugin_app.backends.olx_directory import author_group_name

    client = client_for(author)
    result = start(client, {"courses": [SAMPLE_COURSE_ID]})
    assert by_course(result)[SAMPLE_COURSE_ID]["url"] and result["manifest"]

    author.groups.remove(Group.objects.get(name=author_group_name(CourseKey.from_string(SAMPLE_COURSE_ID))))

    for path in (STATUS, "/api/courses/v0/processes/"):
        later = client.get(path + result["processId"]).json()["result"]
        (item,) = later["items"]
        assert "url" not in item and "no longer" in item["reason"]
        assert item["status"] == "exported" and not later.get("manifest") and later["report"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'Give exactly one of "courses"'),
        ({"courses": "x"}, "courses:"),
        ({"all": True, "changed_only": "maybe"}, "changed_only:"),
        ({"courses": ["a", "a"]}, "Duplicate course ids: a."),
    ],
)
def test_a_bad_request_is_refused_naming_the_field_and_records_nothing(
    client_for, staff, bucket, body, message
):
    answer = client_for(staff).post(BACKUP, body, format="json")
    assert answer.status_code == 400 and message in answer.json()["developer_message"]
    assert not BulkProcess.objects.exists()


def test_status_of_an_unknown_or_foreign_run_is_404_and_anonymous_is_401(
    client_for, staff, stranger, bucket, olx_root
):
    process_id = client_for(staff).post(BACKUP, {"all": True}, format="json").json()["processId"]
    for url in (STATUS + process_id, STATUS + "0" * 32):
        answer = client_for(stranger).get(url)
        assert answer.status_code == 404 and answer.json()["params"]["err"] == "PROCESS_NOT_FOUND"
    assert client_for(stranger).get(STATUS + "list").json()["result"]["backups"] == []
    assert client_for(None).post(BACKUP, {"all": True}, format="json").status_code == 401
    assert client_for(None).get(STATUS + process_id).status_code == 401


def test_command_backs_up_as_the_service_user_and_fails_when_a_course_fails(
    staff, other_course, olx_root, settings
):
    settings.EXPORTBULK_SERVICE_USERNAME = "staff"
    out = io.StringIO()
    call_command("exportbulk_backup", "--all", stdout=out)
    assert "Completed: 2 exported, 0 unchanged, 0 failed" in out.getvalue()
    out = io.StringIO()
    call_command("exportbulk_backup", "--org", "OtherOrg", stdout=out)
    assert "0 exported, 1 unchanged, 0 failed" in out.getvalue()

    (olx_root / "OtherOrg" / "course.xml").unlink()  # gone from the platform
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 course"):
        call_command("exportbulk_backup", "--course", other_course, "--course", SAMPLE_COURSE_ID, stdout=out)
    assert "Course not found." in out.getvalue()
    with pytest.raises(CommandError, match="No active user 'nobody'"):
        call_command("exportbulk_backup", "--user", "nobody")


def test_a_canceled_run_ends_canceled_stores_no_backup_and_says_so_in_its_manifest(
    client_for, staff, other_course, bucket
):
    from plugin_app import backups

    process_id = backups.start_backup(staff, [SAMPLE_COURSE_ID, other_course], send=False)  # not yet run
    answer = client_for(staff).post(f"{STATUS}{process_id}/cancel")
    assert answer.status_code == 200 and answer.json()["result"]["status"] == "Canceled"
    result = client_for(staff).get(STATUS + process_id).json()["result"]
    assert [i["status"] for i in result["items"]] == ["canceled", "canceled"]
    manifest = requests.get(result["manifest"], timeout=30).json()
    assert [c["status"] for c in manifest["courses"]] == ["canceled", "canceled"]
    client, name = bucket
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", [])]
    assert [k for k in keys if k.endswith(".tar.gz")] == []


def test_a_run_ends_even_when_the_bucket_refuses_its_manifest(client_for, staff, olx_root, bucket):
    from plugin_app import backups, lifecycle

    process_id = backups.start_backup(staff, [SAMPLE_COURSE_ID], send=False)
    shutil.rmtree(olx_root / "sample")  # the course fails at run time, before any write
    client, name = bucket
    client.delete_bucket(Bucket=name)  # and the manifest cannot be stored
    lifecycle.dispatch(process_id)
    result = client_for(staff).get(STATUS + process_id).json()["result"]
    assert result["status"] == "Failed" and result["items"][0]["reason"] == "Course not found."


def restore(client, source: str, course_id: str) -> dict:
    body = {"items": [{"source": source, "course_id": course_id}], "overwrite": True}
    answer = client.post("/api/courses/v0/restore/", body, format="json")
    assert answer.status_code == 202, answer.content
    return client.get(f"/api/courses/v0/restore/status/{answer.json()['processId']}").json()["result"]


def test_with_a_fresh_database_the_bucket_answers_versions_restores_and_change_awareness(
    client_for, staff, other_course, olx_root
):
    """The bucket is the source of truth: the backup index comes back from it (issue 25.4)."""
    from plugin_app.models import BackupCourse, BackupVersion

    client = client_for(staff)
    first = by_course(start(client, {"courses": [other_course]}))[other_course]
    overview = olx_root / "OtherOrg" / "about" / "overview.html"
    original = overview.read_text()
    overview.write_text("<p>v2</p>")  # a change: a second version
    second = by_course(start(client, {"courses": [other_course]}))[other_course]
    assert (first["status"], second["status"]) == ("exported", "exported")
    before = client.get(f"/api/courses/v0/backup/versions/{other_course}").json()["versions"]

    BackupVersion.objects.all().delete()  # the database is lost; the bucket stays
    BackupCourse.objects.all().delete()

    after = client.get(f"/api/courses/v0/backup/versions/{other_course}")
    assert after.status_code == 200, after.content
    versions = after.json()["versions"]
    assert [v["key"] for v in versions] == [second["key"], first["key"]]
    assert [(v["size"], v["sha256"], v["created"]) for v in versions] == [
        (v["size"], v["sha256"], v["created"]) for v in before
    ]
    stamp = first["key"].rsplit("/", 1)[1].removesuffix(".tar.gz")
    for source, text in ((f"backup:{stamp}", original), ("backup:latest", "<p>v2</p>")):
        restored = restore(client, source, other_course)["items"][0]
        assert restored["status"] == "restored", (source, restored)
        assert overview.read_text() == text
    again = by_course(start(client, {"courses": [other_course]}))[other_course]
    assert (again["status"], again["key"]) == ("unchanged", second["key"])


def test_versions_of_a_course_that_does_not_exist_or_is_not_the_callers_are_errors(
    client_for, staff, author, other_course
):
    missing = client_for(staff).get("/api/courses/v0/backup/versions/course-v1:No+Such+Course")
    assert missing.status_code == 404
    assert "course-v1:No+Such+Course does not exist" in missing.json()["developer_message"]
    refused = client_for(author).get(f"/api/courses/v0/backup/versions/{other_course}")
    assert refused.status_code == 403 and "Permission denied" in refused.json()["developer_message"]


def test_command_defaults_to_the_user_provision_made_under_any_name(other_course, settings):
    """The README provisions `--username svc`: the backup command runs as that user (issue 25.8)."""
    settings.EXPORTBULK_SERVICE_USERNAME = "exportbulk"  # no such user
    with pytest.raises(CommandError, match="exportbulk-standalone provision") as refused:
        call_command("exportbulk_backup", "--all")
    assert "init task" not in str(refused.value)
    call_command(
        "exportbulk_provision", "--username", "svc", "--email", "svc@example.com",
        "--client-id", "cli", "--client-secret", "s" * 32,
    )  # fmt: skip
    out = io.StringIO()
    call_command("exportbulk_backup", "--course", other_course, stdout=out)
    assert "Completed: 1 exported" in out.getvalue()
    assert BulkProcess.objects.get().owner.username == "svc"
