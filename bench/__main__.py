"""
Benchmarks of bulk export, bulk upload and bulk restore, each figure a ratio against a baseline of
the same run.

    python -m bench [--copies 20] [--large-mb 300] [--rows 1000] [--poll-seconds 10]

Starts moto's S3 server, the standalone server under gunicorn and one Celery worker (Redis,
MariaDB), prepares its own data, and prints ``name=value`` lines, then a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import psutil

from bench import scaleout
from bench.backup import bench_backup
from bench.library_backup import bench_library_backup
from bench.measure import RSS_NOISE_MB, peak_rss_growth, timed
from bench.overhead import bench_overhead
from bench.restore import bench_restore
from bench.stack import Stack, copy_course, source_course
from bench.status import bench_status
from bench.versions import bench_versions
from plugin_app.standalone.cli import SAMPLE_COURSES
from tests.builders import PROBLEM, content_zip, manifest

# Rounds of the export figures, each one baseline, serial and bulk run in turn; a figure is the
# median of its rounds. Five, not three: a bulk export takes both cores, and on a shared host the
# second comes and goes for stretches that can spoil two runs of three.
EXPORT_ROUNDS = 5


def bench_export(stack: Stack, copies: int, large_mb: int, figures: dict) -> None:
    root = stack.work / "courses"
    source = source_course()
    ids = [copy_course(source, root, f"Bench{i:03d}") for i in range(copies)]
    client = stack.client()
    client.export_courses(ids[:1])  # warm up: imports, connections, token

    def baseline() -> None:
        for i, course_id in enumerate(ids):
            tarball = stack.work / "baseline.tar.gz"
            folder = root / f"Bench{i:03d}"
            subprocess.run(["tar", "-czf", str(tarball), "-C", str(root), folder.name], check=True)
            stack.s3.upload_file(str(tarball), stack.bucket, f"baseline/{course_id}.tar.gz")

    def serial() -> None:
        for course_id in ids:
            assert not client.export_courses([course_id])["failed_uploads"]

    def bulk() -> None:
        assert not client.export_courses(ids)["failed_uploads"]

    runs = {name: [] for name in ("export_baseline_s", "export_serial_s", "export_bulk_s")}
    for _ in range(EXPORT_ROUNDS):
        runs["export_baseline_s"].append(timed(baseline))
        runs["export_serial_s"].append(timed(serial))
        runs["export_bulk_s"].append(timed(bulk))
    for name, values in runs.items():
        figures[name] = statistics.median(values)
    # Each round's baseline/serial/bulk seconds: how far the machine moved during the invocation.
    rounds = zip(*runs.values(), strict=True)
    figures["export_rounds_s"] = " ".join("/".join(f"{t:.2f}" for t in times) for times in rounds)
    figures["export_bulk_vs_baseline"] = figures["export_bulk_s"] / figures["export_baseline_s"]
    figures["export_bulk_speedup"] = figures["export_serial_s"] / figures["export_bulk_s"]

    # The runs above export unchanged courses again: each tarball is byte for byte the latest
    # export, which then needs no copy. Here every course changed (a file's time) before each run.
    def changed_bulk() -> None:
        for i in range(copies):
            pointer = root / f"Bench{i:03d}" / "course.xml"
            os.utime(pointer, (pointer.stat().st_atime, pointer.stat().st_mtime + 1))
        bulk()

    changed_s = figures["export_bulk_changed_s"] = statistics.median(timed(changed_bulk) for _ in range(3))
    figures["export_bulk_changed_vs_baseline"] = changed_s / figures["export_baseline_s"]

    small_id = copy_course(SAMPLE_COURSES / "sample", root, "BenchSmall", pad_mb=max(10, large_mb // 10))
    large_id = copy_course(SAMPLE_COURSES / "sample", root, "BenchLarge", pad_mb=large_mb)
    client.export_courses([small_id])  # warm up: the first export of a size pays one-time allocations
    _, small_growth = peak_rss_growth(stack, lambda: client.export_courses([small_id]))
    large_peak, large_growth = peak_rss_growth(stack, lambda: client.export_courses([large_id]))
    figures["export_large_mb"] = large_mb
    figures["export_large_peak_rss_mb"] = large_peak
    figures["export_small_rss_growth_mb"] = small_growth
    figures["export_large_rss_growth_mb"] = large_growth
    # Growths under the allocator's noise (a few MB either way) count as that noise: a tarball
    # held in memory would still show as ~10 (300 MB against 30 MB).
    figures["export_rss_growth"] = max(large_growth, RSS_NOISE_MB) / max(small_growth, RSS_NOISE_MB)


def bench_upload(stack: Stack, rows: int, figures: dict) -> None:

    files: dict[str, bytes] = {}
    manifest_rows = []
    kinds = [("html", b"<p>page %d</p>"), ("xml", None), ("pdf", b"%%PDF-1.4 %d"), ("png", b"\x89PNG %d")]
    for i in range(rows):
        ext, body = kinds[i % len(kinds)]
        name = f"f{i}.{ext}"
        files[name] = PROBLEM if body is None else body % i
        manifest_rows.append(
            {
                "course_id": "course-v1:ExportBulk+Sample+2026",
                "file": name,
                "unit": f"Bench / Rows / Unit {i // 100}",
            }
        )
    work = stack.work / "upload"
    work.mkdir()
    (work / "content.zip").write_bytes(content_zip(files))
    for name, data in files.items():
        (work / "files" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "files" / name).write_bytes(data)
    target = stack.work / "cp-target"

    def copy() -> None:
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-r", str(work / "files"), str(target)], check=True)

    copy_s = statistics.median(timed(copy) for _ in range(3))
    client = stack.client()
    manifests = []
    for run in range(3):  # each run into units of its own, so that no run finds the units fuller
        rows_of_run = [{**row, "unit": row["unit"].replace("Bench", f"Bench {run}")} for row in manifest_rows]
        manifests.append(work / f"manifest-{run}.csv")
        manifests[-1].write_bytes(manifest(rows_of_run))

    def upload(path: Path) -> None:
        process_id = client.bulk_upload(path, work / "content.zip", mode="link")["processId"]
        final = list(client.wait(process_id, kind="upload", interval=0.1, timeout=1800))[-1]
        assert final["status"] == "Completed" and final["failedCount"] == 0, final

    upload_s = statistics.median(timed(lambda path=path: upload(path)) for path in manifests)
    figures["upload_rows"] = rows
    figures["upload_s"] = upload_s
    figures["upload_rows_per_s"] = rows / upload_s
    figures["upload_vs_copy"] = upload_s / copy_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--large-mb", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--tiny-courses", type=int, default=200)
    parser.add_argument("--poll-seconds", type=float, default=10)
    kinds = [
        "export",
        "overhead",
        "upload",
        "status",
        "upload_large",
        "backup",
        "library_backup",
        "restore",
        "versions",
        "scaleout",
    ]
    parser.add_argument("--only", choices=kinds, action="append")
    args = parser.parse_args()
    only = set(args.only or kinds)
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="exportbulk-bench-") as folder:
        work = Path(folder)
        shutil.copytree(SAMPLE_COURSES, work / "courses")
        stack = Stack(work)
        stack.start()
        try:
            if "export" in only:
                bench_export(stack, args.copies, args.large_mb, figures)
            if "overhead" in only:
                bench_overhead(stack, args.tiny_courses, figures)
            if "upload" in only:
                bench_upload(stack, args.rows, figures)
            if "status" in only:
                bench_status(stack, args.poll_seconds, figures)
            if "upload_large" in only:
                scaleout.bench_upload_large(stack, figures)
            if "backup" in only:
                bench_backup(stack, args.copies, figures)
            if "library_backup" in only:
                bench_library_backup(stack, args.copies, figures)
            if "restore" in only:
                bench_restore(stack, args.copies, args.large_mb, figures)
            if "versions" in only:
                bench_versions(stack, figures)
        finally:
            stack.stop()
        if "scaleout" in only:
            scaleout.bench_scaleout(work / "scaleout", args.copies, args.poll_seconds, figures)
    for name, value in figures.items():
        print(f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}")
    print()
    print(f"{'figure':<28}{'value':>12}")
    for name, value in figures.items():
        print(f"{name:<28}{value:>12.3f}" if isinstance(value, float) else f"{name:<28}{value:>12}")
    print(f"\nmachine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
