"""
Fixtures shared by the test suite: real peers wherever one runs here.

- S3: moto's server over HTTP on loopback (one per session, a fresh bucket per test);
- courses: a copy of the project's sample course in a temporary OLX root;
- users and real JWTs signed by the standalone project's key.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from plugin_app.standalone.cli import SAMPLE_COURSES
from plugin_app.standalone.processes import free_port, wait_for_port
from tests.builders import SAMPLE_COURSE_ID

SHARED_OLX = Path(__file__).resolve().parents[2] / "shared" / "data" / "olx"
SECRET = "test-secret-key-do-not-leak"


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server, as a separate process speaking HTTP on loopback."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing-key-id",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(moto_endpoint, settings):
    """A fresh bucket on moto's server, configured as the app's storage."""
    name = f"exportbulk-{uuid.uuid4().hex[:12]}"
    client = s3_client(moto_endpoint)
    client.create_bucket(Bucket=name)
    settings.EXPORTBULK_BUCKET = name
    settings.EXPORTBULK_S3_ENDPOINT_URL = moto_endpoint
    settings.EXPORTBULK_AWS_ACCESS_KEY_ID = "testing-key-id"
    settings.EXPORTBULK_AWS_SECRET_ACCESS_KEY = SECRET
    settings.EXPORTBULK_S3_REGION = "us-east-1"
    return client, name


@pytest.fixture
def local_storage(tmp_path, settings):
    """Local-folder storage (no bucket)."""
    settings.EXPORTBULK_BUCKET = ""
    settings.EXPORTBULK_LOCAL_ROOT = str(tmp_path / "storage")
    return tmp_path / "storage"


@pytest.fixture
def olx_root(tmp_path, settings) -> Path:
    """A writable OLX root holding a copy of the sample course."""
    root = tmp_path / "courses"
    shutil.copytree(SAMPLE_COURSES, root)
    settings.EXPORTBULK_COURSE_BACKEND = "olx_directory"
    settings.EXPORTBULK_OLX_ROOT = str(root)
    return root


@pytest.fixture
def sample_course(olx_root) -> Path:
    return olx_root / "sample"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)


@pytest.fixture
def author(django_user_model):
    """A user of the sample course's author group, and no other."""
    from django.contrib.auth.models import Group
    from opaque_keys.edx.keys import CourseKey

    from plugin_app.backends.olx_directory import author_group_name

    user = django_user_model.objects.create_user("author", "author@example.com", "pw")
    group, _ = Group.objects.get_or_create(name=author_group_name(CourseKey.from_string(SAMPLE_COURSE_ID)))
    user.groups.add(group)
    return user


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user("stranger", "stranger@example.com", "pw")


def jwt_for(user, expires_in: int = 3600) -> str:
    from plugin_app.standalone.oauth import make_jwt

    return make_jwt(user, expires_in, ["user_id"], "client_credentials")


@pytest.fixture
def client_for():
    """A DRF test client authenticated with a real JWT for the user (or anonymous for None)."""
    from rest_framework.test import APIClient

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"JWT {jwt_for(user)}")
        return client

    return make


@pytest.fixture
def held_back(monkeypatch):
    """Processes are recorded but not sent: the test runs them as a worker would, when it wants."""
    from plugin_app import lifecycle

    monkeypatch.setattr(lifecycle, "dispatch", lambda process_id: None)


@pytest.fixture
def items_in_this_thread(monkeypatch):
    """Backup and restore items write to the database from the thread that runs them (course
    holds), and sqlite's in-memory test database refuses (does not wait for) a second thread's
    write: they run here, one by one, as a worker's tasks run them (the plan, then
    ``work_on_item``), instead of in ``run_now``'s threads."""
    from plugin_app import lifecycle, runners
    from plugin_app.data import ItemStatus, ProcessKind
    from plugin_app.models import BulkItem, BulkProcess

    send = lifecycle.dispatch

    def dispatch(process_id: str) -> None:
        kind = BulkProcess.objects.get(process_id=process_id).kind
        if kind not in (ProcessKind.BACKUP, ProcessKind.RESTORE):
            return send(process_id)
        runners.plan(process_id)
        items = BulkItem.objects.filter(process__process_id=process_id, status=ItemStatus.PENDING)
        for item_id in items.values_list("id", flat=True):
            runners.work_on_item(item_id)
        lifecycle.maybe_finish(process_id)

    monkeypatch.setattr(lifecycle, "dispatch", dispatch)


def edx_cleaner_errors(course_dir: Path) -> int:
    """How many errors olxcleaner's ``edx-cleaner`` finds in an OLX course."""
    import re

    command = Path(sys.executable).parent / "edx-cleaner"
    result = subprocess.run(
        [str(command), "-c", str(course_dir / "course.xml")], capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    if "No errors found" in output:
        return 0
    match = re.search(r"ERRORs: (\d+)", output)
    assert match, f"edx-cleaner said neither errors nor none:\n{output}"
    return int(match.group(1))


def shared_courses() -> list[Path]:
    """The real Open edX courses under ../shared/data/olx (empty in a user's clone)."""
    if not SHARED_OLX.is_dir():
        return []
    return sorted(p for p in SHARED_OLX.iterdir() if (p / "course.xml").is_file())


def shared_course_params() -> list[Any]:
    """``shared_courses()`` as test parameters; without any, one skipped case that says why."""
    courses = shared_courses()
    if courses:
        return [pytest.param(path, id=path.name) for path in courses]
    reason = f"no real Open edX course: {SHARED_OLX} is missing or holds no course.xml"
    return [pytest.param(None, id="no-shared-olx", marks=pytest.mark.skip(reason=reason))]


# The standalone server over HTTP, with a real Celery worker on Redis, on MariaDB ---------------

MARIADB_URL = "mysql://root@127.0.0.1:3306/{name}"
CLIENT_ID, CLIENT_SECRET = "exportbulk-test-client", "exportbulk-test-client-secret"
SERVICE_USER, SERVICE_PASSWORD = "exportbulk-service", "service-password"


class Redis:
    """A Redis server of the stack's own, persisted as Tutor's is (AOF), so that it can be restarted."""

    def __init__(self, folder: Path):
        folder.mkdir()
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        self.process.terminate()  # SIGTERM: Redis writes its AOF and exits
        self.process.wait(15)


# A worker whose dead predecessor's task comes back within seconds: Redis redelivers it after
# 3 s, and its lease on the process has expired by then.
FAST_RESUME = {"EXPORTBULK_VISIBILITY_TIMEOUT": "3", "EXPORTBULK_LEASE_SECONDS": "2"}


class LiveStack:
    """A running standalone server and worker sharing one MariaDB database, Redis and bucket.

    S3 is reached through a fault proxy (forwarding untouched until a test sets its ``rule``).
    """

    def __init__(self, root: Path, env: dict, base_url: str, bucket: str, s3, redis: Redis, s3_proxy):
        self.root, self.env, self.base_url, self.bucket, self.s3 = root, env, base_url, bucket, s3
        self.redis, self.s3_proxy = redis, s3_proxy
        self.database = env["EXPORTBULK_DATABASE_URL"].rsplit("/", 1)[1]
        self.olx_root = Path(env["EXPORTBULK_OLX_ROOT"])
        self.workers: list[subprocess.Popen] = []

    def command(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "plugin_app.standalone", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,  # provision migrates Learning Core too (on MariaDB, about a minute)
        )

    def start_worker(self, **env) -> subprocess.Popen:
        log = open(self.root / f"worker-{len(self.workers)}.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "plugin_app.standalone", "worker"],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def start_upload(self, folder: Path, rows: int, unit: str, client=None) -> str:
        """A link-mode bulk upload of ``rows`` mixed rows into ``unit``; its process id."""
        from tests.builders import mixed_upload

        manifest_bytes, zip_bytes = mixed_upload(rows, unit)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "m.csv").write_bytes(manifest_bytes)
        (folder / "c.zip").write_bytes(zip_bytes)
        client = client or self.client()
        return client.bulk_upload(folder / "m.csv", folder / "c.zip", mode="link")["processId"]

    def client(self, **kwargs):
        from tutor_exportbulk.client import OpenedxRESTAPIClient

        return OpenedxRESTAPIClient(self.base_url, CLIENT_ID, CLIENT_SECRET, **kwargs)

    def restart_redis(self, down_seconds: float = 1.0) -> None:
        import time

        self.redis.stop()
        time.sleep(down_seconds)
        self.redis.start()

    def kill_database_connections(self) -> int:
        """Kill every MariaDB connection to the stack's database (server's and workers'); how many."""
        ids = _mariadb(f"SELECT id FROM information_schema.processlist WHERE db = '{self.database}'")
        for (connection_id,) in ids:
            with contextlib.suppress(Exception):  # it may have ended meanwhile
                _mariadb(f"KILL CONNECTION {connection_id}")
        return len(ids)

    def kill_workers(self) -> None:
        """SIGKILL every running worker, as the OOM killer or a lost node would."""
        import os
        import signal

        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)

    def stop_workers(self) -> None:
        import os
        import signal

        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)


def _mariadb(sql: str) -> tuple:
    import pymysql

    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


@contextlib.contextmanager
def standalone_server(env: dict, port: int, log_path: Path, workers: int):
    """The standalone server under gunicorn on ``port``, answering once this is entered."""
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "plugin_app.standalone",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, server)
            yield server
        finally:
            server.terminate()
            server.wait(15)


@pytest.fixture(scope="session")
def live(tmp_path_factory, moto_endpoint):
    """The standalone server (gunicorn) and one worker, provisioned, on MariaDB, Redis and moto."""
    import os

    from tests.faults import FaultProxy

    root = tmp_path_factory.mktemp("live")
    redis = Redis(root / "redis")
    redis.start()
    s3_proxy = FaultProxy(moto_endpoint).__enter__()
    database = f"exportbulk_test_{uuid.uuid4().hex[:8]}"
    _mariadb(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    bucket_name = f"live-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket_name)
    shutil.copytree(SAMPLE_COURSES, root / "courses")
    port = free_port()
    env = {
        **os.environ,
        "EXPORTBULK_HOME": str(root / "home"),
        "EXPORTBULK_OLX_ROOT": str(root / "courses"),
        "EXPORTBULK_DATABASE_URL": MARIADB_URL.format(name=database),
        "CELERY_BROKER_URL": redis.url,
        "EXPORTBULK_BUCKET": bucket_name,
        "EXPORTBULK_S3_ENDPOINT_URL": s3_proxy.url,
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "EXPORTBULK_TOKEN_EXPIRE_SECONDS": "3600",
        # The load test plays many users through one client; the quota has its own tests.
        "EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER": "100",
        # Tests of multipart uploads (faults, kills, cancels between parts) use courses of a few
        # parts of S3's smallest size.
        "EXPORTBULK_UPLOAD_PART_BYTES": str(8 * 1024 * 1024),
        "DJANGO_SETTINGS_MODULE": "plugin_app.standalone.settings",
    }
    stack = LiveStack(root, env, f"http://127.0.0.1:{port}", bucket_name, s3, redis, s3_proxy)
    stack.command(
        "provision",
        "--username",
        SERVICE_USER,
        "--email",
        "service@example.com",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
        "--password",
        SERVICE_PASSWORD,
    )
    try:
        with standalone_server(env, port, root / "server.log", workers=2):
            stack.start_worker()
            try:
                yield stack
            finally:
                stack.stop_workers()
    finally:
        s3_proxy.__exit__(None, None, None)
        redis.stop()
        _mariadb(f"DROP DATABASE IF EXISTS {database}")
