"""
Benchmark of bulk restore: ``restore_vs_export`` (restoring N real courses over themselves, against
exporting the same N, both through the one Celery worker of the same stack), and the worker's peak
RSS while it restores a course padded to ``large_mb`` (streamed: it must stay flat).
"""

from __future__ import annotations

import psutil

from bench.measure import RSS_NOISE_MB, peak_rss_growth, timed
from bench.stack import copy_course, source_course
from plugin_app.standalone.cli import SAMPLE_COURSES


def worker_rss(stack) -> int:
    """Resident memory of the Celery worker and its pool processes."""
    worker = psutil.Process(stack.processes[-1].pid)
    return sum(p.memory_info().rss for p in [worker, *worker.children(recursive=True)])


def _export(client, ids: list[str]) -> None:
    process_id = client.export_courses(ids, async_=True)["processId"]
    final = list(client.wait(process_id, kind="export", interval=0.1, timeout=3600))[-1]
    assert final["status"] == "Completed" and final["failedCount"] == 0, final


def _restore(client, ids: list[str]) -> None:
    items = [{"source": f"{course_id}.tar.gz", "course_id": course_id} for course_id in ids]
    process_id = client.restore(items, overwrite=True)["processId"]
    final = list(client.wait(process_id, kind="restore", interval=0.1, timeout=3600))[-1]
    failed = [item for item in final["items"] if item["status"] != "restored"]
    assert final["status"] == "Completed" and not failed, failed or final


def bench_restore(stack, copies: int, large_mb: int, figures: dict) -> None:

    root = stack.work / "courses"
    source = source_course()
    ids = [copy_course(source, root, f"Restore{i:03d}") for i in range(copies)]
    client = stack.client()
    _export(client, ids[:1])
    _restore(client, ids[:1])  # warm up both paths in the worker
    figures["restore_courses"] = copies
    figures["restore_export_s"] = timed(lambda: _export(client, ids))
    figures["restore_s"] = timed(lambda: _restore(client, ids))
    figures["restore_vs_export"] = figures["restore_s"] / figures["restore_export_s"]

    small_id = copy_course(SAMPLE_COURSES / "sample", root, "RestoreSmall", pad_mb=max(10, large_mb // 10))
    large_id = copy_course(SAMPLE_COURSES / "sample", root, "RestoreLarge", pad_mb=large_mb)
    _export(client, [small_id, large_id])
    _restore(client, [small_id])  # the first restore of a size pays one-time allocations

    def rss() -> int:
        return worker_rss(stack)

    _, small_growth = peak_rss_growth(stack, lambda: _restore(client, [small_id]), rss)
    large_peak, large_growth = peak_rss_growth(stack, lambda: _restore(client, [large_id]), rss)
    figures["restore_large_mb"] = large_mb
    figures["restore_large_worker_peak_rss_mb"] = large_peak
    figures["restore_small_worker_rss_growth_mb"] = small_growth
    figures["restore_large_worker_rss_growth_mb"] = large_growth
    figures["restore_rss_growth"] = max(large_growth, RSS_NOISE_MB) / max(small_growth, RSS_NOISE_MB)
