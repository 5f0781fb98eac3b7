"""
The shared lifecycle in-process: item claims and leases, one ending per process, cancel, the
per-user quota, and upload throughput that does not depend on the course's size.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from plugin_app import api, lifecycle, runners, storage
from plugin_app.data import ItemOutcome, ItemStatus, ProcessKind, ProcessStatus, UploadMode
from plugin_app.models import BulkItem, BulkProcess
from tests.builders import SAMPLE_COURSE_ID, content_zip, manifest, mixed_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def not_sent(monkeypatch):
    """Processes are recorded but not run (no worker takes them): they stay active."""
    monkeypatch.setattr(lifecycle, "dispatch", lambda process_id: None)


def export_of(user, courses: int = 3) -> str:
    return api.create_export(user, [SAMPLE_COURSE_ID] * courses)


def report_rows(process_id: str) -> list[dict]:
    process = BulkProcess.objects.get(process_id=process_id)
    with storage.get_storage().open(process.report_name) as report:
        return list(csv.DictReader(io.StringIO(report.read().decode("utf-8-sig"))))


# Claims and leases ---------------------------------------------------------------------------


def test_an_item_is_claimed_once_until_its_lease_runs_out(staff, sample_course, local_storage, not_sent):
    process_id = export_of(staff, 1)
    item_id = BulkItem.objects.get(process__process_id=process_id).id

    first = lifecycle.claim_item(item_id)
    assert first is not None and first.attempts == 1
    assert lifecycle.claim_item(item_id) is None  # a redelivered task: the item is held
    assert BulkProcess.objects.get(process_id=process_id).status == ProcessStatus.PROCESSING

    BulkItem.objects.filter(id=item_id).update(lease_expires=timezone.now() - timedelta(seconds=1))
    second = lifecycle.claim_item(item_id)  # its runner died: taken over
    assert second is not None and second.attempts == 2

    # The dead runner comes back: its outcome is not saved over the new runner's.
    assert not lifecycle.finish_item(first, ItemOutcome(ItemStatus.FAILED, error="late"), end=False)
    assert lifecycle.finish_item(second, ItemOutcome(ItemStatus.SUCCESS, {"object": "x"}))
    item = BulkItem.objects.get(id=item_id)
    assert (item.status, item.error) == (ItemStatus.SUCCESS, "")


def test_a_process_ends_once_whoever_finishes_last(
    staff, sample_course, local_storage, not_sent, monkeypatch
):
    process_id = export_of(staff, 3)
    reports = []
    real_write = lifecycle.write_report
    monkeypatch.setattr(lifecycle, "write_report", lambda p, rows: reports.append(p) or real_write(p, rows))
    items = [lifecycle.claim_item(i.id) for i in BulkItem.objects.filter(process__process_id=process_id)]
    for item in items[:2]:
        lifecycle.finish_item(item, ItemOutcome(ItemStatus.SUCCESS, {"object": "o"}))
        assert BulkProcess.objects.get(process_id=process_id).status == ProcessStatus.PROCESSING
    lifecycle.finish_item(items[2], ItemOutcome(ItemStatus.FAILED, error="no"))
    for _ in range(3):  # late deliveries
        lifecycle.maybe_finish(process_id)
        runners.work_on_item(items[0].id)

    info = api.get_process(staff, ProcessKind.EXPORT, process_id)
    assert (info.status, info.total_count, info.success_count, info.failed_count) == ("Completed", 3, 2, 1)
    assert len(reports) == 1
    assert [r["status"] for r in report_rows(process_id)] == ["success", "success", "failed"]


def test_fan_out_sends_a_window_of_items_at_a_time(
    staff, sample_course, local_storage, settings, monkeypatch
):
    from plugin_app import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", lambda task, arg, countdown=None: sent.append(arg))
    settings.EXPORTBULK_ITEMS_IN_FLIGHT = 2
    from celery import current_app

    current_app.conf.task_always_eager = False  # as with a broker
    try:
        process_id = export_of(staff, 5)
    finally:
        current_app.conf.task_always_eager = True
    ids = list(
        BulkItem.objects.filter(process__process_id=process_id)
        .order_by("position")
        .values_list("id", flat=True)
    )
    assert sent == ids[:2]
    runners.work_on_item(ids[0])  # one ends: one more is sent, behind other processes' items
    assert sent == ids[:3]
    for item_id in ids[1:]:
        runners.work_on_item(item_id)
    assert sent == ids
    assert BulkProcess.objects.get(process_id=process_id).status == ProcessStatus.COMPLETED


def test_a_dead_runners_item_is_sent_again_when_the_next_item_ends(
    staff, sample_course, local_storage, settings, monkeypatch
):
    from celery import current_app

    from plugin_app import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", lambda task, arg, countdown=None: sent.append(arg))
    current_app.conf.task_always_eager = False
    try:
        process_id = export_of(staff, 2)
    finally:
        current_app.conf.task_always_eager = True
    first, second = BulkItem.objects.filter(process__process_id=process_id).order_by("position")
    dead = lifecycle.claim_item(first.id)  # its worker is killed: the lease is never renewed
    BulkItem.objects.filter(id=first.id).update(lease_expires=timezone.now() - timedelta(seconds=1))

    runners.work_on_item(second.id)  # the other worker ends the next item

    assert sent == [first.id, second.id, first.id]  # sent again, not left to the broker's timeout
    runners.work_on_item(first.id)
    assert dead is not None and not lifecycle.finish_item(dead, ItemOutcome(ItemStatus.FAILED), end=False)
    info = api.get_process(staff, ProcessKind.EXPORT, process_id)
    assert (info.status, info.success_count, info.failed_count) == ("Completed", 2, 0)


# Cancel -----------------------------------------------------------------------------------------


def test_cancel_ends_a_queued_process_canceled_with_its_counts(
    client_for, staff, sample_course, local_storage, not_sent
):
    process_id = export_of(staff, 4)
    running = lifecycle.claim_item(BulkItem.objects.filter(process__process_id=process_id).first().id)

    answer = client_for(staff).post(f"/api/courses/v0/export/status/{process_id}/cancel")
    assert answer.status_code == 202  # one item is running: it finishes first
    assert answer.json()["result"]["canceledCount"] == 3
    assert lifecycle.claim_item(BulkItem.objects.filter(process__process_id=process_id).last().id) is None

    lifecycle.finish_item(running, ItemOutcome(ItemStatus.SUCCESS, {"object": "o"}))
    status = client_for(staff).get(f"/api/courses/v0/export/status/{process_id}").json()["result"]
    assert (status["status"], status["successCount"], status["canceledCount"], status["totalCount"]) == (
        "Canceled", 1, 3, 4,
    )  # fmt: skip
    assert [r["status"] for r in report_rows(process_id)] == ["success"] + ["canceled"] * 3
    again = client_for(staff).post(f"/api/courses/v0/export/status/{process_id}/cancel")
    assert again.status_code == 200 and again.json()["result"]["status"] == "Canceled"


def test_cancel_of_an_upload_removes_its_content(client_for, staff, sample_course, local_storage, not_sent):
    manifest_bytes, zip_bytes = mixed_upload(5, "C / C / C")
    process_id = api.create_upload(staff, manifest_bytes, io.BytesIO(zip_bytes), UploadMode.LINK)
    content = BulkProcess.objects.get(process_id=process_id).content_name
    answer = client_for(staff).post(f"/api/courses/v0/content/bulk/upload/status/{process_id}/cancel")
    assert answer.status_code == 200 and answer.json()["result"]["status"] == "Canceled"
    assert not storage.get_storage().exists(content)
    assert runners.run_sequential(process_id) is False  # its queued task does nothing


def test_only_the_owner_cancels(client_for, staff, author, sample_course, local_storage, not_sent):
    process_id = export_of(staff, 2)
    answer = client_for(author).post(f"/api/courses/v0/export/status/{process_id}/cancel")
    assert answer.status_code == 404
    wrong_kind = client_for(staff).post(f"/api/courses/v0/content/bulk/upload/status/{process_id}/cancel")
    assert wrong_kind.status_code == 404
    assert BulkProcess.objects.get(process_id=process_id).canceled_at is None


def test_a_canceled_writer_stops_between_parts_and_leaves_no_object(bucket, settings):
    client, name = bucket
    settings.EXPORTBULK_UPLOAD_PART_BYTES = 8 * 1024 * 1024  # 40 MiB: five parts
    checks = []

    def should_stop() -> bool:
        checks.append(1)
        return len(checks) >= 2

    with (
        pytest.raises(storage.Stopped),
        storage.open_writer("big.bin", "application/octet-stream", should_stop) as out,
    ):
        for _ in range(40):
            out.write(b"x" * (1024 * 1024))
    assert len(checks) == 2
    assert client.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=name).get("KeyCount") == 0


# Quota --------------------------------------------------------------------------------------


def test_the_sixth_active_process_is_refused_and_others_are_unaffected(
    client_for, staff, django_user_model, sample_course, local_storage, not_sent, settings
):
    assert settings.EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER == 5
    body = {"courses": [SAMPLE_COURSE_ID], "async": True}
    for _ in range(5):
        assert client_for(staff).post("/api/courses/v0/export/", body, format="json").status_code == 202
    before = (BulkProcess.objects.count(), BulkItem.objects.count(), sorted(local_storage.rglob("*")))

    refused = client_for(staff).post("/api/courses/v0/export/", body, format="json")
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    assert "at most 5" in refused.json()["developer_message"]
    manifest_bytes = manifest([{"course_id": SAMPLE_COURSE_ID, "file": "a.pdf"}])
    form = {"file": io.BytesIO(manifest_bytes), "content": io.BytesIO(content_zip({"a.pdf": b"%PDF-1.4"}))}
    form["file"].name, form["content"].name = "m.csv", "c.zip"
    upload = client_for(staff).post(
        "/api/courses/v0/content/bulk/upload", form, format="multipart", HTTP_OPERATION_MODE="upload"
    )
    assert upload.status_code == 429 and upload["Retry-After"]
    assert (BulkProcess.objects.count(), BulkItem.objects.count(), sorted(local_storage.rglob("*"))) == before

    other = django_user_model.objects.create_user("other", "o@example.com", "pw", is_staff=True)
    assert client_for(other).post("/api/courses/v0/export/", body, format="json").status_code == 202
    # One ends (canceled): its owner may start another.
    first = BulkProcess.objects.filter(owner=staff).first().process_id.hex
    client_for(staff).post(f"/api/courses/v0/export/status/{first}/cancel")
    assert client_for(staff).post("/api/courses/v0/export/", body, format="json").status_code == 202


# Upload into a large course -------------------------------------------------------------------


def test_upload_into_a_course_with_5000_assets_has_the_small_courses_outcome(staff, olx_root, local_storage):
    large = olx_root / "large"
    shutil.copytree(olx_root / "sample", large)
    pointer = (large / "course.xml").read_text().replace('org="ExportBulk"', 'org="Large"')
    (large / "course.xml").write_text(pointer)
    large_id = SAMPLE_COURSE_ID.replace("ExportBulk", "Large")
    policy_path = large / "policies" / "assets.json"
    existing = json.loads(policy_path.read_text())
    existing.update({f"old{i}.png": {"displayname": f"old{i}.png", "locked": False} for i in range(5000)})
    policy_path.write_text(json.dumps(existing))

    small_policy = olx_root / "sample" / "policies" / "assets.json"
    small_before = set(json.loads(small_policy.read_text()))
    outcomes = {}
    for course_id in (SAMPLE_COURSE_ID, large_id):
        manifest_bytes, zip_bytes = mixed_upload(60, "Big / Big / Big", course_id)
        process_id = api.create_upload(staff, manifest_bytes, io.BytesIO(zip_bytes), UploadMode.LINK)
        outcomes[course_id] = [(r["status"], r["error"]) for r in report_rows(process_id)]
    assert outcomes[large_id] == outcomes[SAMPLE_COURSE_ID] == [("success", "")] * 60

    assets = json.loads(policy_path.read_text())
    added_small = set(json.loads(small_policy.read_text())) - small_before
    assert set(assets) - set(existing) == added_small and len(added_small) == 36  # html, problem: none
    assert all(assets[name] == entry for name, entry in existing.items())


def test_an_item_whose_task_gave_up_fails_and_the_next_is_sent(
    staff, sample_course, local_storage, settings, monkeypatch
):
    from celery import current_app

    from plugin_app import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", lambda task, arg, countdown=None: sent.append(arg))
    settings.EXPORTBULK_ITEMS_IN_FLIGHT = 1
    current_app.conf.task_always_eager = False
    try:
        process_id = export_of(staff, 2)
    finally:
        current_app.conf.task_always_eager = True
    first, second = BulkItem.objects.filter(process__process_id=process_id).order_by("position")
    assert sent == [first.id]
    tasks.run_item.on_failure(ConnectionError("down"), "task-id", (first.id,), {}, None)
    assert BulkItem.objects.get(id=first.id).error == "This course could not be run (ConnectionError)."
    assert sent == [first.id, second.id]
    runners.work_on_item(second.id)
    info = api.get_process(staff, ProcessKind.EXPORT, process_id)
    assert (info.status, info.success_count, info.failed_count) == ("Completed", 1, 1)
