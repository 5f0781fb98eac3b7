"""
Running a process: one runner at a time (the process lease for sequential kinds), and how a
process ends when something outside it fails (the worker gave up, the storage refused the report).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from plugin_app import api, lifecycle, storage
from plugin_app.data import ProcessStatus, UploadMode
from plugin_app.lease import ProcessBusy, leased
from plugin_app.models import BulkProcess
from tests.builders import mixed_upload, unit_children

pytestmark = pytest.mark.django_db

UNIT = "Lease Section / Lease Subsection / Lease Unit"


@pytest.fixture
def queued_upload(staff, sample_course, local_storage, monkeypatch) -> str:
    """A bulk upload of 5 rows, stored and recorded but not run."""
    monkeypatch.setattr(lifecycle, "dispatch", lambda process_id: None)
    manifest_bytes, zip_bytes = mixed_upload(5, UNIT)
    return api.create_upload(staff, manifest_bytes, io.BytesIO(zip_bytes), UploadMode.LINK)


def done_rows(process_id: str) -> int:
    return BulkProcess.objects.get(process_id=process_id).items.exclude(status="pending").count()


def test_a_second_runner_waits_while_the_process_is_held(queued_upload, sample_course):
    with leased(queued_upload) as process:
        assert process.status == ProcessStatus.PROCESSING
        with pytest.raises(ProcessBusy):
            lifecycle.run_sequential(queued_upload)
        assert done_rows(queued_upload) == 0

    api.run_now(queued_upload)  # released: this runner takes it
    assert BulkProcess.objects.get(process_id=queued_upload).status == ProcessStatus.COMPLETED
    assert len(unit_children(sample_course, "Lease Unit")) == 5


def test_a_runner_takes_over_once_the_holders_lease_expired(queued_upload, settings):
    """The holder died without releasing: its lease runs out, and the next delivery resumes."""
    BulkProcess.objects.filter(process_id=queued_upload).update(
        status=ProcessStatus.PROCESSING, lease_expires=timezone.now() + timedelta(seconds=60)
    )
    with pytest.raises(ProcessBusy) as busy:
        lifecycle.run_sequential(queued_upload)
    assert busy.value.retry_in == settings.EXPORTBULK_LEASE_SECONDS

    BulkProcess.objects.filter(process_id=queued_upload).update(lease_expires=timezone.now())
    api.run_now(queued_upload)
    process = BulkProcess.objects.get(process_id=queued_upload)
    assert (process.status, process.lease_expires) == (ProcessStatus.COMPLETED, None)


def test_a_process_the_worker_gave_up_on_is_failed_reported_and_cleaned(queued_upload, local_storage):
    content_name = BulkProcess.objects.get(process_id=queued_upload).content_name
    assert storage.get_storage().exists(content_name)

    reason = "The process could not run (OperationalError)."
    api.fail_process(queued_upload, reason)

    process = BulkProcess.objects.get(process_id=queued_upload)
    assert (process.status, process.error) == (ProcessStatus.FAILED, reason)
    assert not storage.get_storage().exists(content_name)
    with storage.get_storage().open(process.report_name) as report:
        rows = list(csv.DictReader(io.StringIO(report.read().decode("utf-8-sig"))))
    assert [r["status"] for r in rows] == ["pending"] * 5


def test_an_unstorable_report_leaves_the_process_completed_with_a_note(queued_upload, monkeypatch):
    def refuse(process, rows_of=None):
        raise ClientError({"Error": {"Code": "ServiceUnavailable"}}, "PutObject")

    monkeypatch.setattr(lifecycle, "write_report", refuse)
    api.run_now(queued_upload)

    process = BulkProcess.objects.get(process_id=queued_upload)
    assert process.status == ProcessStatus.COMPLETED and process.report_name == ""
    assert "report could not be stored" in process.error
    assert done_rows(queued_upload) == 5
