"""
Backup figures: what change-awareness saves, and what a fingerprint costs.

- ``backup_incremental_ratio``: a backup of N courses with one changed, over the first full
  backup of the same N (same stack, same run; the incremental time is the median of three runs,
  each with another course changed). Measured in steady state: the worker has fingerprinted the courses
  before (as every nightly run after the first has), so its digest cache holds the files that
  did not change. ``backup_unchanged_cold_ratio`` is the run that filled that cache (no course
  changed, every file hashed), for comparison.
- ``backup_fingerprint_ms_per_course``: ``olx_directory``'s fingerprint of one course, every
  file hashed (cold); ``backup_fingerprint_warm_ms_per_course`` with the digest cache filled.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.stack import copy_course, source_course
from plugin_app.data import OlxTree
from plugin_app.fingerprint import RACY_MARGIN_NS, FileDigests, tree_fingerprint


def bench_backup(stack: Any, copies: int, figures: dict) -> None:
    root = stack.work / "courses"
    folders = [f"Backup{i:03d}" for i in range(copies)]
    source = source_course()
    ids = [copy_course(source, root, folder) for folder in folders]
    client = stack.client()

    def run(expect_exported: int, changed_only: bool = True) -> float:
        return timed_backup(client, ids, expect_exported, changed_only)

    full = run(copies)
    time.sleep(RACY_MARGIN_NS / 1e9)  # files written by the copy are now old enough to cache
    unchanged_cold = run(0)
    incrementals = []
    for folder in folders[:3]:
        changed = root / folder / "about" / "overview.html"
        changed.write_text(changed.read_text() + "\n<!-- changed -->\n")
        incrementals.append(run(1))
    # A forced run (changed_only false) exports every course again, from warm caches.
    forced = run(copies, changed_only=False)
    incremental = statistics.median(incrementals)
    figures["backup_full_s"] = full
    figures["backup_incremental_s"] = incremental
    figures["backup_incremental_ratio"] = incremental / full
    figures["backup_unchanged_cold_ratio"] = unchanged_cold / full
    figures["backup_forced_full_s"] = forced

    trees = [OlxTree(path=root / folder, root_name=_url_name(root / folder)) for folder in folders]
    digests = FileDigests()
    cold = [_ms(lambda tree=tree: tree_fingerprint(tree, digests)) for tree in trees]
    warm = [_ms(lambda tree=tree: tree_fingerprint(tree, digests)) for tree in trees]
    figures["backup_fingerprint_ms_per_course"] = statistics.mean(cold)
    figures["backup_fingerprint_warm_ms_per_course"] = statistics.mean(warm)
    figures["backup_course_mb"] = (
        sum(f.stat().st_size for f in trees[0].path.rglob("*") if f.is_file()) / 2**20
    )


def timed_backup(client: Any, ids: list[str], expect_exported: int, changed_only: bool = True) -> float:
    """Seconds one backup run of ``ids`` takes, from the request to its end; it must export
    exactly ``expect_exported`` of them and fail none."""
    start = time.perf_counter()
    process_id = client.backup_courses(ids, changed_only=changed_only)["processId"]
    final = list(client.wait(process_id, kind="backup", interval=0.05, timeout=3600))[-1]
    elapsed = time.perf_counter() - start
    exported = sum(1 for item in final["items"] if item["status"] == "exported")
    assert final["status"] == "Completed" and final["failedCount"] == 0, final
    assert exported == expect_exported, (exported, expect_exported)
    return elapsed


def _url_name(course: Path) -> str:
    import re

    return re.search(r'url_name="([^"]*)"', (course / "course.xml").read_text()).group(1)


def _ms(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000
