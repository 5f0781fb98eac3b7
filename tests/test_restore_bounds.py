"""
A restore item is bounded whatever its tarball: olxcleaner runs in a child process held to a
time and a memory budget, its findings are capped where they are stored and where they are
shown, a cancel stops the item between its phases, and an item that keeps failing is given up
after a number of attempts counted in the database (in-process; the live stack has its own).
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from plugin_app import lifecycle, olx_validation, restores, runners
from plugin_app.data import ItemStatus
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.olx_validation import MAX_FINDINGS, MAX_FINDINGS_BYTES
from tests.tarballs import _add, course_tarball, fan_out_tarball
from tests.test_restore import put, run, tree_digest

pytestmark = pytest.mark.django_db
NEW_ID = "course-v1:Fan+F+2027"
BACKUP = f"backups/{NEW_ID}/20261123T193000Z.tar.gz"


def test_the_fan_out_tarball_is_under_500_bytes():
    assert len(fan_out_tarball()) < 500


def test_olxcleaner_out_of_memory_fails_the_item_with_the_reason(olx_root, bucket, staff, settings):
    put(bucket, "fan.tar.gz", fan_out_tarball())
    settings.EXPORTBULK_RESTORE_VALIDATION_MEMORY_BYTES = 200 * 1024**2
    before = tree_digest(olx_root)

    outcome = run(NEW_ID, "fan.tar.gz", staff)

    assert outcome.outcome == restores.FAILED
    assert "olxcleaner needed more than its 200 MiB of memory" in outcome.error
    assert tree_digest(olx_root) == before


def test_olxcleaner_over_its_time_fails_the_item_with_the_reason(olx_root, bucket, staff, settings):
    put(bucket, "fan.tar.gz", fan_out_tarball())
    settings.EXPORTBULK_RESTORE_VALIDATION_SECONDS = 1
    before = tree_digest(olx_root)

    outcome = run(NEW_ID, "fan.tar.gz", staff, dry_run=True)

    assert outcome.outcome == restores.FAILED
    assert "olxcleaner took longer than its 1 seconds" in outcome.error
    assert tree_digest(olx_root) == before


def test_python_files_of_a_tarball_are_never_imported_by_the_validator(olx_root, bucket, staff, tmp_path):
    marker = tmp_path / "imported"
    code = f"open({str(marker)!r}, 'w').close()\n".encode()

    def python_files(tar):
        for name in ("json.py", "olxcleaner.py", "resource.py"):
            _add(tar, f"t/{name}", code)

    put(bucket, "py.tar.gz", course_tarball(python_files))

    outcome = run(NEW_ID, "py.tar.gz", staff, dry_run=True)

    assert outcome.outcome == restores.WOULD_RESTORE, outcome.error
    assert not marker.exists()


def test_findings_are_capped_by_count_and_bytes_and_counted_whole(olx_root, bucket, staff):
    put(bucket, "fan.tar.gz", fan_out_tarball(width=12))  # 1,728 blocks: quick, and many findings

    outcome = run(NEW_ID, "fan.tar.gz", staff, dry_run=True)

    assert outcome.outcome == restores.WOULD_RESTORE, outcome.error
    assert outcome.findings_total > 1000
    assert 0 < len(outcome.findings) <= MAX_FINDINGS
    assert len(json.dumps(outcome.findings)) <= MAX_FINDINGS_BYTES


def test_status_caps_findings_stored_before_the_caps():
    finding = {"level": "ERROR", "name": "X", "file": "f.xml", "message": "m" * 5000}
    item = BulkItem(
        position=0,
        course_id=NEW_ID,
        status=ItemStatus.FAILED,
        error="e" * 1_000_000,
        data={"source": "s", "object": "o"},
        result={"outcome": "failed", "findings": [finding] * 100_000},
    )
    shown = restores.present_item(item, True)

    assert len(json.dumps(shown)) < 10_000
    assert shown["findings_total"] == 100_000


def test_a_cancel_while_olxcleaner_runs_stops_the_item_and_writes_nothing(olx_root, bucket, staff):
    put(bucket, "fan.tar.gz", fan_out_tarball())
    before = tree_digest(olx_root)
    asked = []

    def should_stop() -> bool:  # the owner cancels once the item is under way
        asked.append(True)
        return len(asked) > 1

    outcome = restores.restore_one("p0-1", NEW_ID, "fan.tar.gz", staff, {}, False, should_stop)

    assert (outcome.outcome, outcome.error) == (
        restores.CANCELED,
        "Canceled while olxcleaner checked the course.",
    )
    assert tree_digest(olx_root) == before


def test_a_cancel_before_the_write_writes_nothing(olx_root, bucket, staff, monkeypatch):
    put(bucket, "fan.tar.gz", fan_out_tarball(width=2))
    before = tree_digest(olx_root)
    checked = []

    def validate_then_cancel(course_dir, should_stop=None):  # the owner cancels once it is checked
        found = olx_validation.validate(course_dir)
        checked.append(True)
        return found

    monkeypatch.setattr(restores, "validate", validate_then_cancel)

    outcome = restores.restore_one("p0-1", NEW_ID, "fan.tar.gz", staff, {}, False, lambda: bool(checked))

    assert (outcome.outcome, outcome.error) == (restores.CANCELED, "Canceled before the course was written.")
    assert tree_digest(olx_root) == before


def _always_failing_restore(monkeypatch) -> list[int]:
    """A restore whose every run meets a database error (as a save too large for the packet)."""
    runs: list[int] = []

    def failing(*args, **kwargs):
        runs.append(1)
        raise OperationalError(1153, "Got a packet bigger than 'max_allowed_packet' bytes")

    monkeypatch.setattr(restores, "restore_one", failing)
    return runs


def test_an_item_that_keeps_failing_is_given_up_after_the_attempts_in_the_database(
    olx_root, bucket, staff, held_back, monkeypatch, settings
):
    settings.EXPORTBULK_MAX_ITEM_ATTEMPTS = 3
    put(bucket, BACKUP, fan_out_tarball())
    process_id = restores.create_restore(staff, [(NEW_ID, "backup:latest")], [], {})
    runs = _always_failing_restore(monkeypatch)
    item = BulkItem.objects.get(process__process_id=process_id)

    for _delivery in range(10):  # each a fresh delivery: Celery's own retry count starts again
        try:
            runners.work_on_item(item.id)
        except OperationalError:
            continue
        break

    item.refresh_from_db()
    assert (len(runs), item.attempts, item.status) == (3, 3, ItemStatus.FAILED)
    assert item.error == lifecycle.GAVE_UP.format(3)
    assert BulkProcess.objects.get(process_id=process_id).status == "Failed"  # its one item failed


def test_an_item_left_running_at_its_last_attempt_is_failed_not_run_again(
    olx_root, bucket, staff, held_back, monkeypatch, settings
):
    """Its runner could not save (nor release) it: the next delivery that may take it over ends it."""
    put(bucket, BACKUP, fan_out_tarball())
    process_id = restores.create_restore(staff, [(NEW_ID, "backup:latest")], [], {})
    limit = settings.EXPORTBULK_MAX_ITEM_ATTEMPTS
    expired = timezone.now() - timedelta(seconds=1)
    BulkItem.objects.filter(process__process_id=process_id).update(
        status=ItemStatus.RUNNING, attempts=limit, lease_expires=expired
    )
    runs = _always_failing_restore(monkeypatch)

    runners.work_on_item(BulkItem.objects.get(process__process_id=process_id).id)

    item = BulkItem.objects.get(process__process_id=process_id)
    assert (runs, item.status, item.attempts) == ([], ItemStatus.FAILED, limit)
    assert BulkProcess.objects.get(process_id=process_id).status == "Failed"  # its one item failed


def test_olxcleaner_is_called_with_studios_settings(tmp_path, settings):
    """COURSE_OLX_VALIDATION_STAGE (Studio's default: 1, loading only) and
    COURSE_OLX_VALIDATION_IGNORE_LIST, as ``validate_course_olx`` passes them."""
    with tarfile.open(fileobj=io.BytesIO(course_tarball())) as tar:
        tar.extractall(tmp_path, filter="data")
    course_dir = tmp_path / "t"

    assert olx_validation.validate(course_dir).counts == {"WARNING": 1}  # EmptyTag
    settings.COURSE_OLX_VALIDATION_STAGE = 8  # every step: the bare course has no policy
    assert olx_validation.validate(course_dir).counts == {"WARNING": 1, "ERROR": 5}
    settings.COURSE_OLX_VALIDATION_IGNORE_LIST = ["PolicyNotFound", "InvalidSetting"]
    checked = olx_validation.validate(course_dir)
    assert checked.counts == {"WARNING": 1} and checked.findings[0]["name"] == "EmptyTag"
