"""
Scale-out on the live stack: two real worker processes on Redis, MariaDB and moto share one
export, survive one of them being killed, stop on a cancel, and let processes take turns.

Which worker did what comes from the workers' own logs ("Bulk item N ... ended ..."), and how
many times an item was claimed from its ``attempts`` in MariaDB.
"""

from __future__ import annotations

import collections
import csv
import io
import os
import re
import shutil
import signal
import time

import pytest
import requests

from plugin_app.standalone.cli import SAMPLE_COURSES
from tests.conftest import FAST_RESUME, _mariadb

pytestmark = pytest.mark.live

ENDED = re.compile(r"Bulk item (\d+) \(([^)]*)\) of process ([0-9a-f]{32}) ended (\w+)")
ENDED_STATUSES = ("Completed", "Failed", "Canceled")


@pytest.fixture
def two_workers(live):
    """Exactly two workers (fast takeover of a dead one's items); one worker again afterwards."""
    live.stop_workers()
    workers = [live.start_worker(**FAST_RESUME), live.start_worker(**FAST_RESUME)]
    yield workers
    live.stop_workers()
    live.start_worker()


def padded_courses(live, count: int, pad_mb: int, tag: str) -> list[str]:
    """Copies of the sample course under orgs of their own, each with ``pad_mb`` of random static bytes."""
    ids = []
    for n in range(count):
        org = f"{tag}{n:03d}"
        target = live.olx_root / org
        if not target.exists():
            shutil.copytree(SAMPLE_COURSES / "sample", target)  # not the live copy: uploads write there
            pointer = (target / "course.xml").read_text().replace('org="ExportBulk"', f'org="{org}"')
            (target / "course.xml").write_text(pointer)
            if pad_mb:
                (target / "static" / "pad.bin").write_bytes(os.urandom(pad_mb * 1024 * 1024))
        ids.append(f"course-v1:{org}+Sample+2026")
    return ids


def final_status(client, process_id: str, kind: str = "export", timeout: float = 300) -> dict:
    status_of = client.export_status if kind == "export" else client.upload_status
    deadline = time.monotonic() + timeout
    while (status := status_of(process_id))["status"] not in ENDED_STATUSES:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    return status


def wait_until(client, process_id: str, done: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.export_status(process_id)["successCount"] < done:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def ended_by_worker(live, process_id: str) -> dict[int, list[tuple[int, str]]]:
    """Worker index -> [(item id, status)] its log says it ended, for one process."""
    ended = {}
    for index in range(len(live.workers)):
        text = (live.root / f"worker-{index}.log").read_text(errors="replace")
        ended[index] = [(int(m[1]), m[4]) for m in ENDED.finditer(text) if m[3] == process_id]
    return ended


def attempts(live, process_id: str) -> dict[str, int]:
    rows = _mariadb(
        f"SELECT i.course_id, i.attempts FROM {live.database}.exportbulk_bulkitem i "
        f"JOIN {live.database}.exportbulk_bulkprocess p ON p.id = i.process_id "
        f"WHERE p.process_id = '{process_id}'"
    )
    return dict(rows)


def report(status: dict) -> list[dict]:
    body = requests.get(status["report"], timeout=30).content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def test_two_workers_share_an_export_of_40_courses_each_once(live, two_workers):
    client = live.client()
    courses = padded_courses(live, 40, 0, "Share")
    process_id = client.export_courses(courses, async_=True)["processId"]
    status = final_status(client, process_id)

    assert (status["status"], status["totalCount"], status["successCount"], status["failedCount"]) == (
        "Completed", 40, 40, 0,
    )  # fmt: skip
    by_worker = ended_by_worker(live, process_id)
    shares = [len(ended) for index, ended in by_worker.items() if live.workers[index] in two_workers]
    assert all(share > 0 for share in shares) and sum(shares) == 40, shares
    every = [item for ended in by_worker.values() for item in ended]
    assert len(every) == len(set(every)) == 40  # each course ended once, by one worker
    assert set(attempts(live, process_id).values()) == {1}  # and was claimed once
    rows = report(status)
    assert sorted(r["course_id"] for r in rows) == sorted(courses)
    assert {r["status"] for r in rows} == {"success"}
    keys = {o["Key"] for o in live.s3.list_objects_v2(Bucket=live.bucket).get("Contents", [])}
    assert {r["object"] for r in rows} <= keys


def test_a_killed_worker_leaves_nothing_undone_and_nothing_done_twice(live, two_workers):
    client = live.client()
    courses = padded_courses(live, 40, 2, "Kill")
    process_id = client.export_courses(courses, async_=True)["processId"]
    wait_until(client, process_id, 5)
    victim = two_workers[1]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    done_at_kill = client.export_status(process_id)["successCount"]
    status = final_status(client, process_id)

    assert done_at_kill < 40, "the export ended before the kill: make it longer"
    assert (status["status"], status["successCount"], status["failedCount"]) == ("Completed", 40, 0)
    ended = collections.Counter(
        item for items in ended_by_worker(live, process_id).values() for item in items
    )
    assert len(ended) == 40 and set(ended.values()) == {1}, "an item ended twice, or never"
    # At most the items the victim held were claimed again (taken over once their lease ran out).
    assert sum(n - 1 for n in attempts(live, process_id).values()) <= 2
    assert {r["status"] for r in report(status)} == {"success"}


def test_cancel_midway_stops_the_export_and_leaves_no_partial_object(live, two_workers):
    client = live.client()
    courses = padded_courses(live, 12, 12, "Cancel")  # two 8 MiB parts each: stopped between them
    process_id = client.export_courses(courses, async_=True)["processId"]
    wait_until(client, process_id, 2)
    assert client.cancel(process_id, "export")["processId"] == process_id  # 200 or 202
    running_at_cancel = {
        course
        for (course,) in _mariadb(
            f"SELECT i.course_id FROM {live.database}.exportbulk_bulkitem i JOIN "
            f"{live.database}.exportbulk_bulkprocess p ON p.id = i.process_id "
            f"WHERE p.process_id = '{process_id}' AND i.status = 'running'"
        )
    }
    # Listed after the running items: one that ends in between has stored both its objects by then.
    keys_at_cancel = {o["Key"] for o in live.s3.list_objects_v2(Bucket=live.bucket).get("Contents", [])}
    status = final_status(client, process_id)

    assert status["status"] == "Canceled"
    assert status["canceledCount"] > 0
    assert status["successCount"] + status["failedCount"] + status["canceledCount"] == 12
    rows = report(status)
    counts = {
        "success": status["successCount"],
        "canceled": status["canceledCount"],
        "failed": status["failedCount"],
    }
    assert collections.Counter(r["status"] for r in rows) == +collections.Counter(counts)
    keys = {o["Key"] for o in live.s3.list_objects_v2(Bucket=live.bucket).get("Contents", [])}
    new_exports = {k for k in keys - keys_at_cancel if k.endswith(".tar.gz")}
    # Only the courses finishing at the cancel (each is stored under the process, then copied as the latest).
    assert {k.rsplit("/", 1)[-1].removesuffix(".tar.gz") for k in new_exports} <= running_at_cancel
    assert live.s3.list_multipart_uploads(Bucket=live.bucket).get("Uploads", []) == []


def test_cancel_of_a_running_upload(live, tmp_path, two_workers):
    client = live.client()
    process_id = live.start_upload(tmp_path / "cancel", 400, "Cancel Section / Cancel Sub / Cancel Unit")
    deadline = time.monotonic() + 60
    while client.upload_status(process_id)["successCount"] < 20:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.cancel(process_id)["processId"] == process_id  # its kind looked up
    status = final_status(client, process_id, "upload")

    assert status["status"] == "Canceled" and 20 <= status["successCount"] < 400
    assert status["successCount"] + status["canceledCount"] == 400
    assert [r["status"] for r in report(status)].count("success") == status["successCount"]
    listing = live.s3.list_objects_v2(Bucket=live.bucket, Prefix=f"uploads/{process_id}")
    assert listing.get("KeyCount") == 0


def test_items_of_concurrent_processes_take_turns(live):
    """One worker: a small export sent after a large one ends long before the large one does."""
    live.stop_workers()
    live.start_worker()
    client = live.client()
    large = client.export_courses(padded_courses(live, 40, 1, "Turn"), async_=True)["processId"]
    small = client.export_courses(padded_courses(live, 2, 0, "Small"), async_=True)["processId"]
    small_status = final_status(client, small)
    large_at_small_end = client.export_status(large)["successCount"]
    assert small_status["status"] == "Completed"
    assert large_at_small_end < 40, "the small export waited for the whole large one"
    assert final_status(client, large)["successCount"] == 40
