"""
Faults and load against the live stack (gunicorn, Celery worker, Redis with AOF, MariaDB, moto
behind a fault proxy). After each fault the process must end Completed or Failed with a reason,
its counts must match its report, no row may have made two blocks, and nothing may be left
half-written in the bucket (no multipart upload, no leftover content).
"""

from __future__ import annotations

import csv
import io
import os
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.builders import unit_children
from tests.conftest import FAST_RESUME, SAMPLE_COURSE_ID
from tests.faults import DROP, SERVER_ERROR, THROTTLED, Fault, once_per_key

pytestmark = pytest.mark.live

# `make soak` sets EXPORTBULK_SOAK=10: ten times the kills and the load.
SOAK = int(os.environ.get("EXPORTBULK_SOAK", "1"))


def start_upload(live, tmp_path: Path, rows: int, unit: str, client=None) -> str:
    """An upload from a folder of its own (tests here run several)."""
    folder = tmp_path / unit.rsplit("/", 1)[-1].strip().replace(" ", "-")
    return live.start_upload(folder, rows, unit, client)


def wait_for_rows(client, process_id: str, rows: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.upload_status(process_id)["successCount"] < rows:
        assert time.monotonic() < deadline, f"fewer than {rows} rows done in {timeout} s"
        time.sleep(0.05)


def assert_bucket_clean(live) -> None:
    """No multipart upload left open and no uploaded content left behind (all processes ended)."""
    assert live.s3.list_multipart_uploads(Bucket=live.bucket).get("Uploads", []) == []
    keys = [o["Key"] for o in live.s3.list_objects_v2(Bucket=live.bucket).get("Contents", [])]
    assert [k for k in keys if k.startswith("uploads/")] == []


def assert_upload_consistent(live, client, process_id: str, rows: int, unit: str) -> dict:
    """The process Completed, every row once in the report and once in the unit."""
    final = list(client.wait(process_id, kind="upload", interval=0.2, timeout=300))[-1]
    assert final["status"] == "Completed", final
    assert (final["totalCount"], final["successCount"], final["failedCount"]) == (rows, rows, 0)
    report = list(
        csv.DictReader(io.StringIO(requests.get(final["report"], timeout=30).content.decode("utf-8-sig")))
    )
    assert len(report) == rows and {r["status"] for r in report} == {"success"}
    children = unit_children(live.olx_root / "sample", unit.rsplit("/", 1)[-1].strip())
    assert sorted(children) == sorted(r["usage_key"].rsplit("@", 1)[1] for r in report)
    assert len(children) == len(set(children)) == rows
    listing = live.s3.list_objects_v2(Bucket=live.bucket, Prefix=f"uploads/{process_id}")
    assert listing.get("KeyCount") == 0, "the uploaded content outlived its process"
    return final


def restart_workers(live, **env) -> None:
    live.stop_workers()
    live.start_worker(**env)


def test_redis_restart_during_a_bulk_upload_loses_and_repeats_nothing(live, tmp_path):
    from tutor_exportbulk.client import OpenedxAPIError

    client = live.client()
    unit = "Redis Section / Redis Subsection / Redis Unit"
    process_id = start_upload(live, tmp_path, 400, unit, client)
    wait_for_rows(client, process_id, 20)
    exports_before = client.export_status_list()["count"]
    live.redis.stop()
    # The broker is down: a new process is refused whole (503) and none is recorded.
    with pytest.raises(OpenedxAPIError) as refused:
        client.export_courses([SAMPLE_COURSE_ID], async_=True)
    assert refused.value.status_code == 503
    assert client.export_status_list()["count"] == exports_before
    time.sleep(1)
    live.redis.start()

    assert_upload_consistent(live, client, process_id, 400, unit)
    # The broker is back: new work is taken again.
    answer = client.export_courses([SAMPLE_COURSE_ID], async_=True)
    final = list(client.wait(answer["processId"], kind="export", interval=0.2, timeout=120))[-1]
    assert final["status"] == "Completed" and final["successCount"] == 1
    assert_bucket_clean(live)


def test_worker_killed_at_random_points_again_and_again(live, tmp_path):
    client = live.client()
    rows = 1000  # the largest manifest: uploads are fast now (batches), the kills must land mid-way
    restart_workers(live, **FAST_RESUME)
    rng = random.Random(20261123)
    for round_ in range(SOAK):
        unit = f"Kill Section / Kill Subsection / Kill Unit {round_}"
        process_id = start_upload(live, tmp_path, rows, unit, client)
        kills = []
        for _ in range(4):
            time.sleep(rng.uniform(0.3, 1.5))
            kills.append(client.upload_status(process_id)["successCount"])
            live.kill_workers()
            live.start_worker(**FAST_RESUME)

        assert kills[-1] < rows, "the process ended before the last kill: make it longer"
        assert_upload_consistent(live, client, process_id, rows, unit)
    assert_bucket_clean(live)


def test_database_connections_dropped_during_an_upload_and_an_export(live, tmp_path):
    client = live.client()
    unit = "Database Section / Database Subsection / Database Unit"
    restart_workers(live, **FAST_RESUME)
    process_id = start_upload(live, tmp_path, 400, unit, client)
    export_id = client.export_courses([SAMPLE_COURSE_ID], async_=True)["processId"]
    wait_for_rows(client, process_id, 10)
    # Three drops that each closed a worker's connection, all while the upload runs. A fixed
    # number of tries can all land between two tasks, when no connection is open (the status
    # poll holds none: the server closes its connection after each request).
    drops = 0
    while drops < 3:
        assert client.upload_status(process_id)["successCount"] < 400, (
            "the upload ended before the third drop: make it longer"
        )
        drops += live.kill_database_connections() > 0
        time.sleep(0.2)

    assert_upload_consistent(live, client, process_id, 400, unit)
    export = list(client.wait(export_id, kind="export", interval=0.2, timeout=120))[-1]
    assert export["status"] == "Completed" and export["successCount"] == 1
    assert_bucket_clean(live)


@pytest.mark.parametrize(
    "label, fault",
    [("500", SERVER_ERROR), ("SlowDown", THROTTLED), ("Dropped", DROP), ("Slow", Fault(delay=0.3))],
)
def test_storage_faults_during_a_bulk_upload_are_retried(live, tmp_path, label, fault):
    """Every S3 request of the worker fails once (the content download, the report upload)."""
    client = live.client()
    unit = f"S3 Section / S3 Subsection / S3 {label}"
    process_id = start_upload(live, tmp_path, 50, unit, client)
    faults_before = sum(live.s3_proxy.faults.values())
    live.s3_proxy.rule = once_per_key(lambda method, query: fault)
    try:
        list(client.wait(process_id, kind="upload", interval=0.2, timeout=300))
    finally:
        live.s3_proxy.rule = None
    assert sum(live.s3_proxy.faults.values()) > faults_before
    assert_upload_consistent(live, client, process_id, 50, unit)
    assert_bucket_clean(live)


def test_load_of_concurrent_exports_and_uploads(live, tmp_path):
    """20 export requests and 5 bulk uploads at once: every one answered, every process consistent."""
    restart_workers(live)
    exports_count = 20 * SOAK
    units = [f"Load Section / Load Subsection / Load Unit {n}" for n in range(5 * SOAK)]
    latencies: list[float] = []

    def export(n: int) -> dict:
        client = live.client()
        started = time.monotonic()
        answer = client.export_courses([SAMPLE_COURSE_ID], async_=n % 2 == 0)
        latencies.append(time.monotonic() - started)
        return answer

    def upload(unit: str) -> str:
        started = time.monotonic()
        process_id = start_upload(live, tmp_path, 40, unit)
        latencies.append(time.monotonic() - started)
        return process_id

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=25) as pool:
        export_futures = [pool.submit(export, n) for n in range(exports_count)]
        upload_futures = [pool.submit(upload, unit) for unit in units]
        exports = [f.result() for f in export_futures]
        uploads = [f.result() for f in upload_futures]
    answered = time.monotonic() - started

    client = live.client()
    for answer in exports:
        if "processId" in answer:
            final = list(client.wait(answer["processId"], kind="export", interval=0.2, timeout=300))[-1]
            assert final["status"] == "Completed" and final["successCount"] == 1
        else:
            assert list(answer["successful_uploads"]) == [SAMPLE_COURSE_ID]
    for process_id, unit in zip(uploads, units, strict=True):
        assert_upload_consistent(live, client, process_id, 40, unit)
    assert_bucket_clean(live)
    total = time.monotonic() - started
    print(
        f"load: {len(latencies)} requests answered in {answered:.1f} s (p50 "
        f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s); every process consistent "
        f"after {total:.1f} s"
    )
