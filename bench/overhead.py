"""
Per-item overhead of the lifecycle, ``lifecycle_overhead_ratio``: tiny courses (copies of the
sample course) exported through the lifecycle, as one async process on the stack's one worker
(claims, leases, status writes, broker round trips), divided by the same exports done directly,
one after another, in one process of the same settings, database and bucket.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

from bench.measure import timed
from bench.stack import Stack, copy_course
from plugin_app.standalone.cli import SAMPLE_COURSES

WORKER_NICENESS = 10  # the default of ``exportbulk-standalone worker --nice``


def _through_the_lifecycle(stack: Stack, ids: list[str]) -> None:
    client = stack.client()
    process_id = client.export_courses(ids, async_=True)["processId"]
    final = list(client.wait(process_id, kind="export", interval=0.1, timeout=3600))[-1]
    assert final["status"] == "Completed" and final["failedCount"] == 0, final


def _directly(stack: Stack, ids: list[str]) -> float:
    """Seconds the exports take in a process of their own, Django's start-up not counted, at the
    worker's CPU priority (``exportbulk-standalone worker --nice``)."""
    result = subprocess.run(
        ["nice", "-n", str(WORKER_NICENESS), sys.executable, "-m", "bench.overhead", *ids],
        env={**stack.env, "DJANGO_SETTINGS_MODULE": "plugin_app.standalone.settings"},
        check=True,
        capture_output=True,
        text=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def bench_overhead(stack: Stack, courses: int, figures: dict) -> None:
    root = stack.work / "courses"
    ids = [copy_course(SAMPLE_COURSES / "sample", root, f"Tiny{i:03d}") for i in range(courses)]
    try:
        _through_the_lifecycle(stack, ids[:1])  # warm up the worker
        _directly(stack, ids[:1])
        lifecycle_s = min(timed(lambda: _through_the_lifecycle(stack, ids)) for _ in range(2))
        direct_s = min(_directly(stack, ids) for _ in range(2))
    finally:
        # The groups after this one share the course folder: 200 more courses there made the
        # standalone backend's index check (a stat of every folder, on each lookup) cost the
        # upload group five times its time, and moved the backup and restore figures too.
        for i in range(courses):
            shutil.rmtree(root / f"Tiny{i:03d}")
    figures["lifecycle_courses"] = courses
    figures["lifecycle_export_s"] = lifecycle_s
    figures["lifecycle_direct_s"] = direct_s
    figures["lifecycle_overhead_ratio"] = lifecycle_s / direct_s


def _export_directly(course_ids: list[str]) -> float:
    import django

    django.setup()
    from opaque_keys.edx.keys import CourseKey

    from plugin_app.export import export_course

    keys = [CourseKey.from_string(course_id) for course_id in course_ids]
    start = time.perf_counter()
    for key in keys:
        export_course(key, uuid.uuid4().hex)  # the worker's work for one item: its object, then the latest
    return time.perf_counter() - start


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "plugin_app.standalone.settings")
    print(_export_directly(sys.argv[1:]))
