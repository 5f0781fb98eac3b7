"""The benchmarks' stack: moto, a MariaDB database, the standalone server and its workers."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any

import boto3
import psutil
import pymysql
from botocore.config import Config

from plugin_app.standalone.cli import SAMPLE_COURSES
from plugin_app.standalone.processes import free_port, standalone, wait_for_port
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

    def __init__(self, work: Path, **env: str):
        self.work = work
        self.extra_env = env
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.worker_names: list[str] = []
        self.logs: list[IO[bytes]] = []
        self.database = f"exportbulk_bench_{uuid.uuid4().hex[:8]}"
        self.bucket = f"bench-{uuid.uuid4().hex[:10]}"

    def log_to(self, name: str) -> dict[str, Any]:
        """Popen arguments sending a process's output to ``<work>/<name>.log`` (appended: a
        restarted worker keeps its predecessor's lines), where a crash can be read afterwards."""
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115  (the child holds it; closed with it)
        self.logs.append(log)
        return {"stdout": log, "stderr": subprocess.STDOUT}

    def start(self) -> None:
        moto_port, port = free_port(), free_port()
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            **self.log_to("moto"),
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
            **self.extra_env,
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
            **self.log_to("server"),
        )
        self.processes.append(self.server)
        wait_for_port(port, self.server)
        self.start_worker()
        self.base_url = f"http://127.0.0.1:{port}"

    def start_worker(self) -> None:
        """One more Celery worker process on the stack's queue, named ``worker_names[i]`` (Celery's
        remote control addresses a worker by its node name, which two on one host must not share)."""
        name = f"bench{len(self.workers)}@{socket.gethostname()}"
        env = {**self.env, "CELERY_WORKER_HOSTNAME": name}  # celery worker --hostname
        worker = standalone("worker", env=env, **self.log_to(f"worker-{len(self.workers)}"))
        self.workers.append(worker)
        self.worker_names.append(name)
        self.processes.append(worker)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.terminate()
            worker.wait(20)
            self.processes.remove(worker)
        self.workers, self.worker_names = [], []

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
        for log in self.logs:
            log.close()
        if sys.exc_info()[0] is not None:  # stopped by a failure: its logs outlive the work folder
            kept = Path(tempfile.mkdtemp(prefix="exportbulk-bench-logs-"))
            for log_file in self.work.glob("*.log"):
                shutil.copy(log_file, kept)
            print(f"The server's, workers' and moto's logs of the failed run: {kept}", file=sys.stderr)


def _mariadb(sql: str) -> None:
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()
