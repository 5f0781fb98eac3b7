"""
Benchmarks of bulk export and bulk upload, each figure a ratio against a baseline of the same run.

    python -m bench [--copies 20] [--large-mb 300] [--rows 1000] [--poll-seconds 10]

Starts moto's S3 server, the standalone server under gunicorn and one Celery worker (Redis,
MariaDB), prepares its own data, and prints ``name=value`` lines, then a table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import psutil
import pymysql
import requests
from botocore.config import Config

from plugin_app.standalone.cli import SAMPLE_COURSES
from plugin_app.standalone.processes import free_port, standalone, wait_for_port
from tests.builders import PROBLEM, content_zip, manifest
from tutor_exportbulk.client import OpenedxRESTAPIClient

SHARED_OLX = Path(__file__).resolve().parents[2] / "shared" / "data" / "olx"
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret"
KEY, SECRET = "bench-key", "bench-secret"


def source_course() -> Path:
    """The largest real course under ../shared/data/olx, else the sample course."""
    candidates = (
        [p for p in SHARED_OLX.glob("*") if (p / "course.xml").is_file()] if SHARED_OLX.is_dir() else []
    )
    if not candidates:
        return SAMPLE_COURSES / "sample"
    return max(candidates, key=lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()))


def copy_course(source: Path, root: Path, org: str, pad_mb: int = 0) -> str:
    """A copy of the course under another org (so another course id), padded with binary assets."""
    target = root / org
    shutil.copytree(source, target)
    pointer = (target / "course.xml").read_text()
    pointer = re.sub(r'org="[^"]*"', f'org="{org}"', pointer)
    (target / "course.xml").write_text(pointer)
    for i in range(pad_mb // 10):
        (target / "static" / f"pad{i}.bin").write_bytes(os.urandom(10 * 1024 * 1024))
    course = re.search(r'course="([^"]*)"', pointer).group(1)
    run = re.search(r'url_name="([^"]*)"', pointer).group(1)
    return f"course-v1:{org}+{course}+{run}"


class Stack:
    """moto, MariaDB database, standalone server and worker for one benchmark run."""

    def __init__(self, work: Path):
        self.work = work
        self.processes: list[subprocess.Popen] = []
        self.database = f"exportbulk_bench_{uuid.uuid4().hex[:8]}"
        self.bucket = f"bench-{uuid.uuid4().hex[:10]}"

    def start(self) -> None:
        moto_port, port = free_port(), free_port()
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(moto)
        wait_for_port(moto_port, moto)
        self.endpoint = f"http://127.0.0.1:{moto_port}"
        self.s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        self.s3.create_bucket(Bucket=self.bucket)
        _mariadb(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4")
        self.env = {
            **os.environ,
            "EXPORTBULK_HOME": str(self.work / "home"),
            "EXPORTBULK_OLX_ROOT": str(self.work / "courses"),
            "EXPORTBULK_DATABASE_URL": f"mysql://root@127.0.0.1:3306/{self.database}",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/12",
            "EXPORTBULK_CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "EXPORTBULK_BUCKET": self.bucket,
            "EXPORTBULK_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "EXPORTBULK_MAX_COURSES_PER_REQUEST": "1000",
            "EXPORTBULK_LOG_LEVEL": "WARNING",
        }
        provision = standalone(
            "provision",
            "--username",
            "bench",
            "--email",
            "bench@example.com",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            env=self.env,
        )
        assert provision.wait() == 0
        self.server = standalone(
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(self.server)
        wait_for_port(port, self.server)
        self.processes.append(
            standalone("worker", env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        self.base_url = f"http://127.0.0.1:{port}"

    def client(self) -> OpenedxRESTAPIClient:
        return OpenedxRESTAPIClient(self.base_url, CLIENT_ID, CLIENT_SECRET, timeout=1800)

    def server_rss(self) -> int:
        """Resident memory of the gunicorn worker(s) serving the API."""
        return sum(child.memory_info().rss for child in psutil.Process(self.server.pid).children())

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            process.wait(20)
        _mariadb(f"DROP DATABASE IF EXISTS {self.database}")


def _mariadb(sql: str) -> None:
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


RSS_NOISE_MB = 16.0


def peak_rss_growth(stack: Stack, fn) -> tuple[float, float]:
    """Peak RSS (MB) of the server while ``fn`` runs, and its growth over the RSS before."""
    before = stack.server_rss()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, stack.server_rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return peak / 2**20, (peak - before) / 2**20


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
    for _ in range(3):
        runs["export_baseline_s"].append(timed(baseline))
        runs["export_serial_s"].append(timed(serial))
        runs["export_bulk_s"].append(timed(bulk))
    for name, values in runs.items():
        figures[name] = statistics.median(values)
    figures["export_bulk_vs_baseline"] = figures["export_bulk_s"] / figures["export_baseline_s"]
    figures["export_bulk_speedup"] = figures["export_serial_s"] / figures["export_bulk_s"]

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


def bench_status(stack: Stack, seconds: float, figures: dict) -> None:
    client = stack.client()
    process_id = client.export_courses(["course-v1:ExportBulk+Sample+2026"], async_=True)["processId"]
    header = {"Authorization": f"JWT {client.access_token()}"}

    def poll(path: str) -> list[float]:
        latencies: list[float] = []
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def run() -> None:
            session = requests.Session()
            while time.monotonic() < deadline:
                start = time.perf_counter()
                assert session.get(stack.base_url + path, headers=header, timeout=30).status_code == 200
                with lock:
                    latencies.append((time.perf_counter() - start) * 1000)

        threads = [threading.Thread(target=run) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(latencies)

    def p(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    status = poll(f"/api/courses/v0/export/status/{process_id}")
    floor = poll("/standalone/ping")
    figures["status_p50_ms"] = p(status, 0.5)
    figures["status_p99_ms"] = p(status, 0.99)
    figures["floor_p99_ms"] = p(floor, 0.99)
    figures["status_p99_vs_floor"] = figures["status_p99_ms"] / figures["floor_p99_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--large-mb", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--poll-seconds", type=float, default=10)
    parser.add_argument("--only", choices=["export", "upload", "status"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["export", "upload", "status"])
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="exportbulk-bench-") as folder:
        work = Path(folder)
        shutil.copytree(SAMPLE_COURSES, work / "courses")
        stack = Stack(work)
        stack.start()
        try:
            if "export" in only:
                bench_export(stack, args.copies, args.large_mb, figures)
            if "upload" in only:
                bench_upload(stack, args.rows, figures)
            if "status" in only:
                bench_status(stack, args.poll_seconds, figures)
        finally:
            stack.stop()
    for name, value in figures.items():
        print(f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}")
    print()
    print(f"{'figure':<28}{'value':>12}")
    for name, value in figures.items():
        print(f"{name:<28}{value:>12.3f}" if isinstance(value, float) else f"{name:<28}{value:>12}")
    print(f"\nmachine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
