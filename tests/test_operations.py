"""
What an operator meets on the first day, in-process: processes whose every item is settled at
submission end before the answer (and free the quota), a missing bucket is named, and a process
whose every item failed ends Failed with a report or says why it has none.
"""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest

from plugin_app import lifecycle, runners, tasks
from plugin_app.data import ItemStatus, ProcessStatus
from plugin_app.models import BulkItem, BulkProcess
from tests import test_cli_server
from tests.builders import SAMPLE_COURSE_ID, content_zip, manifest

run_cli, not_sent = test_cli_server.run_cli, test_cli_server.not_sent  # the CLI's fixtures

pytestmark = pytest.mark.django_db

API = "/api/courses/v0/"
TYPO = "course-v1:ExportBulk+Sampel+2026"
NEW = "course-v1:New+Course+2027"
# One request of each kind whose every item the server refuses at submission.
SETTLED = {
    "export: a course-id typo": ("export", "export/", {"courses": [TYPO], "async": True}),
    "backup: a course-id typo": ("backup", "backup/", {"courses": [TYPO]}),
    "restore: backup:latest of a course without backup": (
        "restore",
        "restore/",
        {"items": [{"source": "backup:latest", "course_id": SAMPLE_COURSE_ID}]},
    ),
    "restore: a file that was not uploaded": (
        "restore",
        "restore/",
        {"items": [{"source": "missing.tar.gz", "course_id": NEW}]},
    ),
    "restore: a bad target id": (
        "restore",
        "restore/",
        {"items": [{"source": "backup:latest", "course_id": "not a course id"}]},
    ),
}


def submit(client, path: str, body: dict) -> str:
    answer = client.post(API + path, body, format="json")
    assert answer.status_code == 202, answer.content
    return answer.json()["processId"]


def status(client, process_id: str) -> dict:
    answer = client.get(f"{API}processes/{process_id}")
    assert answer.status_code == 200, answer.content
    return answer.json()["result"]


def report_rows(client, url: str) -> list[dict]:
    answer = client.get(url)
    body = b"".join(answer.streaming_content) if answer.streaming else answer.content
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize("case", SETTLED)
def test_a_process_settled_at_submission_has_ended_when_answered(
    case,
    client_for,
    staff,
    sample_course,
    local_storage,
    not_sent,
):
    kind, path, body = SETTLED[case]
    client = client_for(staff)

    result = status(client, submit(client, path, body))  # no worker ever runs it

    assert (result["kind"], result["status"]) == (kind, "Failed")
    assert (result["totalCount"], result["failedCount"]) == (1, 1)
    assert result["endTime"] and result["error"] == lifecycle.EVERY_ITEM_FAILED
    (row,) = report_rows(client, result["report"])
    assert row["status"] == "failed" and (row.get("error") or row.get("reason"))


def test_an_upload_refused_at_submission_records_nothing(client_for, staff, sample_course, local_storage):
    form = {
        "file": io.BytesIO(manifest([{"course_id": TYPO, "file": "a.pdf"}])),
        "content": io.BytesIO(content_zip({"a.pdf": b"%PDF-1.4"})),
    }

    answer = client_for(staff).post(
        API + "content/bulk/upload", form, format="multipart", HTTP_OPERATION_MODE="upload"
    )

    assert answer.status_code == 400, answer.content
    assert TYPO in json.dumps(answer.json())
    assert not BulkProcess.objects.exists()


def test_settled_processes_leave_the_quota_free(
    client_for,
    staff,
    sample_course,
    local_storage,
    not_sent,
    settings,
):
    settings.EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER = 5
    client = client_for(staff)
    for _kind, path, body in [*SETTLED.values(), SETTLED["export: a course-id typo"]]:  # six
        submit(client, path, body)

    real = [submit(client, "export/", {"courses": [SAMPLE_COURSE_ID], "async": True}) for _ in range(5)]

    assert [status(client, process_id)["status"] for process_id in real] == ["Queued"] * 5
    refused = client.post(API + "export/", {"courses": [SAMPLE_COURSE_ID], "async": True}, format="json")
    assert refused.status_code == 429  # the five real ones count, the six settled ones do not


@pytest.mark.django_db(transaction=True)
def test_wait_returns_at_once_for_a_settled_process(run_cli, sample_course, not_sent):
    queued = run_cli("export", TYPO, "--async")
    process_id = queued.stdout.split("export queued: ")[1].split()[0]

    waited = run_cli("status", process_id, "--wait", "--interval", "0.05", "--json")

    assert waited.exit_code == 1, waited.output  # ended, and failed
    assert json.loads(waited.stdout)["status"] == "Failed"


# A bucket that does not exist ----------------------------------------------------------------


@pytest.fixture
def missing_bucket(moto_endpoint, settings) -> str:
    """moto's server as the storage, with a bucket name nobody created."""
    from tests.conftest import SECRET

    name = f"exportbulk-missing-{uuid.uuid4().hex[:8]}"
    settings.EXPORTBULK_BUCKET = name
    settings.EXPORTBULK_S3_ENDPOINT_URL = moto_endpoint
    settings.EXPORTBULK_AWS_ACCESS_KEY_ID = "testing-key-id"
    settings.EXPORTBULK_AWS_SECRET_ACCESS_KEY = SECRET
    settings.EXPORTBULK_S3_REGION = "us-east-1"
    return name


def test_storage_check_names_a_missing_bucket(client_for, staff, missing_bucket):
    answer = client_for(staff).get(API + "storage/check")

    assert answer.status_code == 503
    assert answer.json() == {
        "developer_message": f"The storage does not work: the bucket {missing_bucket} does not exist.",
        "error_code": "storage_unavailable",
    }


def test_storage_check_passes_on_a_bucket_and_leaves_nothing(client_for, staff, bucket):
    s3, name = bucket

    answer = client_for(staff).get(API + "storage/check")

    assert answer.status_code == 200 and answer.json() == {"storage": f"bucket {name}"}
    assert s3.list_objects_v2(Bucket=name).get("KeyCount", 0) == 0


@pytest.mark.django_db(transaction=True)
def test_cli_check_fails_naming_the_missing_bucket(run_cli, missing_bucket):
    checked = run_cli("check")

    assert checked.exit_code != 0
    line = next(line for line in checked.stdout.splitlines() if "storage" in line)
    assert "FAILED" in line and f"the bucket {missing_bucket} does not exist" in line


def test_every_course_failing_on_a_missing_bucket_ends_failed_saying_why_no_report(
    client_for,
    staff,
    sample_course,
    missing_bucket,
    not_sent,
):
    client = client_for(staff)
    process_id = submit(client, "export/", {"courses": [SAMPLE_COURSE_ID], "async": True})

    (item,) = BulkItem.objects.filter(process__process_id=process_id)
    runners.work_on_item(item.id)  # what the worker's task does

    result = status(client, process_id)
    assert (result["status"], result["failedCount"]) == (ProcessStatus.FAILED, 1)
    assert result["report"] is None
    assert result["reportMissing"].startswith("The report could not be stored")
    assert f"the bucket {missing_bucket} does not exist" in result["error"]
    assert f"the bucket {missing_bucket} does not exist" in BulkItem.objects.get(id=item.id).error


def test_an_item_whose_task_gave_up_on_a_missing_bucket_names_it(
    client_for,
    staff,
    sample_course,
    missing_bucket,
    not_sent,
):
    from botocore.exceptions import ClientError

    from plugin_app import storage

    process_id = submit(client_for(staff), "export/", {"courses": [SAMPLE_COURSE_ID], "async": True})
    (item,) = BulkItem.objects.filter(process__process_id=process_id)
    with pytest.raises(ClientError) as raised:
        storage.get_storage().client.list_objects_v2(Bucket=missing_bucket)

    # Its retries exhausted, Celery hands the task's last error to on_failure.
    tasks.run_item.on_failure(raised.value, "task-id", (item.id,), {}, None)

    reason = BulkItem.objects.get(id=item.id).error
    assert reason == f"This course could not be run (the bucket {missing_bucket} does not exist)."


@pytest.mark.django_db(transaction=True)
def test_report_command_says_why_an_ended_process_has_none(run_cli, sample_course, not_sent):
    queued = run_cli("export", TYPO, "--async")
    process_id = queued.stdout.split("export queued: ")[1].split()[0]
    BulkProcess.objects.filter(process_id=process_id).update(report_name="")  # as when the bucket refused it

    reported = run_cli("report", process_id)

    assert reported.exit_code != 0
    assert "(Failed) has no report: The report could not be stored" in reported.output


def test_a_process_with_a_success_among_failures_completes(
    client_for,
    staff,
    sample_course,
    local_storage,
    not_sent,
):
    client = client_for(staff)
    process_id = submit(client, "export/", {"courses": [SAMPLE_COURSE_ID, TYPO], "async": True})
    assert status(client, process_id)["status"] == "Queued"

    (pending,) = BulkItem.objects.filter(process__process_id=process_id, status=ItemStatus.PENDING)
    runners.work_on_item(pending.id)

    result = status(client, process_id)
    assert (result["status"], result["successCount"], result["failedCount"]) == ("Completed", 1, 1)
    assert "error" not in result and result["report"]


# A request that answers 5xx ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["export", "restore"])
def test_a_request_that_fails_after_recording_its_process_leaves_none_behind(
    kind, client_for, staff, sample_course, local_storage, monkeypatch
):
    from django.db import OperationalError

    def locked(process_id: str) -> None:  # as SQLite answered when a worker held the write lock
        raise OperationalError("database is locked")

    monkeypatch.setattr(lifecycle, "dispatch", locked)
    path, body = {
        "export": ("export/", {"courses": [SAMPLE_COURSE_ID], "async": True}),
        "restore": ("restore/", {"items": [{"source": f"{SAMPLE_COURSE_ID}.tar.gz", "course_id": NEW}]}),
    }[kind]
    if kind == "restore":
        from opaque_keys.edx.keys import CourseKey

        from plugin_app.export import export_course

        export_course(CourseKey.from_string(SAMPLE_COURSE_ID))

    answer = client_for(staff).post(API + path, body, format="json")

    assert answer.status_code == 500
    assert not BulkProcess.objects.exists()  # a retry starts afresh, not on "course exists"
