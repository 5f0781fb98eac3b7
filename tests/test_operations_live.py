"""
Operations on the live stack (gunicorn's ASGI server, Celery workers, MariaDB, Redis, moto):
database connections stay bounded under concurrent calls and saturated workers, no call gets a
5xx while the workers are saturated, and a process settled at submission has ended when answered.

Connections are counted in MariaDB's processlist (the stack's database), each one matched to
the process holding it through its client port.
"""

from __future__ import annotations

import collections
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.conftest import _mariadb
from tests.test_live_scaleout import final_status, padded_courses, two_workers  # noqa: F401  (fixture)
from tutor_exportbulk.client import OpenedxAPIError

pytestmark = pytest.mark.live

SERVER_BOUND, WORKER_BOUND = 10, 5  # connections per server process, per worker process


def connections_by_process(database: str) -> dict[str, int]:
    """The stack's MariaDB connections per process holding them: {"<role> <pid>": count}."""
    ports = collections.Counter(
        int(host.rsplit(":", 1)[1])
        for (host,) in _mariadb(f"SELECT host FROM information_schema.processlist WHERE db = '{database}'")
        if ":" in host
    )
    counts: dict[str, int] = collections.Counter()
    for process in psutil.Process(os.getpid()).children(recursive=True):
        try:
            held = [c for c in process.net_connections("tcp") if c.raddr and c.raddr.port == 3306]
            role = "worker" if "celery" in " ".join(process.cmdline()) else "server"
        except psutil.Error:  # ended meanwhile
            continue
        mine = sum(ports[c.laddr.port] for c in held)
        if mine:
            counts[f"{role} {process.pid}"] += mine
    return dict(counts)


class ConnectionWatch:
    """The most connections each process held, sampled every 0.2 s while the block runs."""

    def __init__(self, database: str):
        self.database, self.most = database, collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for process, count in connections_by_process(self.database).items():
                self.most[process] = max(self.most[process], count)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def over_bounds(self) -> dict[str, int]:
        return {
            process: count
            for process, count in self.most.items()
            if count > (WORKER_BOUND if process.startswith("worker") else SERVER_BOUND)
        }


def test_waves_of_concurrent_calls_leave_the_servers_connections_bounded(live):
    clients = [live.client() for _ in range(20)]
    process_id = clients[0].export_courses(padded_courses(live, 1, 0, "Wave"), async_=True)["processId"]
    for client in clients:
        client.access_token()

    def calls(client) -> None:
        client.process_list("export")
        client.process(process_id)

    with ConnectionWatch(live.database) as watch, ThreadPoolExecutor(20) as pool:
        for _wave in range(3):
            list(pool.map(calls, clients))
            after = connections_by_process(live.database)
            servers = {process: count for process, count in after.items() if process.startswith("server")}
            assert all(count <= SERVER_BOUND for count in servers.values()), after

    print("most connections per process:", dict(watch.most))
    assert watch.most, "no connection was seen: the count does not measure anything"
    assert not watch.over_bounds(), dict(watch.most)


def test_polls_uploads_and_cancels_while_two_workers_are_saturated(live, tmp_path, two_workers):  # noqa: F811
    from tests.faults import Fault

    client = live.client()
    pollers = [live.client(timeout=120) for _ in range(8)]  # a token each before the load
    for poller in pollers:
        poller.access_token()
    log_start = (live.root / "server.log").stat().st_size
    # Every upload part waits 2 s in the S3 proxy: each course of the export holds its worker.
    live.s3_proxy.rule = lambda method, query: Fault(delay=2.0) if "partNumber" in query else None
    failures: list[str] = []
    try:
        big = client.export_courses(padded_courses(live, 16, 9, "Busy"), async_=True)["processId"]
        with ConnectionWatch(live.database) as watch:

            def poll(own) -> None:
                for _ in range(10):
                    try:
                        own.process(big)
                        own.process_list("export")
                    except OpenedxAPIError as error:
                        failures.append(str(error))

            with ThreadPoolExecutor(8) as pool:
                polling = pool.map(poll, pollers)
                uploads = [
                    live.start_upload(tmp_path / f"up{n}", 20, f"Busy {n} / Sub / Unit") for n in range(2)
                ]
                canceled = client.cancel(uploads[1])
                list(polling)
            canceled_big = client.cancel(big, "export")
            ended = [final_status(client, big), final_status(client, uploads[0], "upload")]
    finally:
        live.s3_proxy.rule = None

    print("most connections per process:", dict(watch.most))
    assert failures == []
    assert canceled["processId"] == uploads[1] and canceled_big["processId"] == big
    assert [status["status"] for status in ended] == ["Canceled", "Completed"]
    assert watch.most and not watch.over_bounds(), dict(watch.most)
    with open(live.root / "server.log", "rb") as log:
        log.seek(log_start)
        answered = log.read().decode(errors="replace")
    assert 'HTTP/1.1" 202' in answered  # the access log is where the answers are
    assert not re.findall(r'"[A-Z]+ [^"]*" 5\d\d ', answered)  # not one 5xx, retried or not


def test_worker_connections_stay_bounded_after_many_items(live):
    client = live.client()
    with ConnectionWatch(live.database) as watch:
        process_id = client.export_courses(padded_courses(live, 30, 0, "Many"), async_=True)["processId"]
        assert final_status(client, process_id)["status"] == "Completed"
        time.sleep(0.5)

    workers = {process: count for process, count in watch.most.items() if process.startswith("worker")}
    assert workers, dict(watch.most)
    assert all(count <= WORKER_BOUND for count in workers.values()), workers


def test_a_process_settled_at_submission_has_ended_when_answered(live):
    client = live.client()

    process_id = client.export_courses(["course-v1:ExportBulk+Sampel+2026"], async_=True)["processId"]

    status = client.process(process_id)  # at once: no worker ever had anything to do
    assert (status["status"], status["failedCount"]) == ("Failed", 1) and status["report"]


def test_with_the_broker_down_a_token_is_given_and_work_is_refused_in_json(live):
    from click.testing import CliRunner

    from tests.conftest import CLIENT_ID, CLIENT_SECRET
    from tutor_exportbulk.cli import standalone_cli

    live.redis.stop()  # the broker, and the cache of failed sign-ins
    try:
        client = live.client()
        assert client.access_token()  # a fresh token: no broker needed
        with pytest.raises(OpenedxAPIError) as refused:
            client.export_courses(padded_courses(live, 1, 0, "Down"), async_=True)
        listed = client.export_status_list()["count"]
        env = {"EXPORTBULK_LMS_URL": live.base_url, "EXPORTBULK_CLIENT_ID": CLIENT_ID,
               "EXPORTBULK_CLIENT_SECRET": CLIENT_SECRET}  # fmt: skip
        cli = CliRunner().invoke(
            standalone_cli, ["export", "course-v1:Down000+Sample+2026", "--async"], env=env
        )
    finally:
        live.redis.start()

    assert refused.value.status_code == 503
    assert refused.value.body == {
        "developer_message": "The task queue's broker is unreachable; nothing was started. Try again later.",
        "error_code": "queue_down",
    }
    assert client.export_status_list()["count"] == listed  # nothing recorded
    assert cli.exit_code != 0 and "503" in cli.output and "broker is unreachable" in cli.output
    assert "<" not in cli.output


@pytest.fixture
def sqlite_stack(tmp_path):
    """The README's worker recipe on the default SQLite database: ``serve`` and ``worker`` on one
    EXPORTBULK_HOME, a Redis of their own, local storage; yields the server's URL and home."""
    import subprocess
    import sys

    from plugin_app.standalone.processes import free_port, wait_for_port
    from tests.conftest import CLIENT_ID, CLIENT_SECRET, Redis

    redis = Redis(tmp_path / "redis")
    redis.start()
    home, port = tmp_path / "home", free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("EXPORTBULK_", "AWS_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # Many processes at once by one client: the quota has its own tests.
    env.update(
        EXPORTBULK_HOME=str(home), CELERY_BROKER_URL=redis.url, EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER="100"
    )
    command = [sys.executable, "-m", "plugin_app.standalone"]
    subprocess.run(
        [*command, "provision", "--username", "u", "--email", "u@example.com", "--client-id", CLIENT_ID,
         "--client-secret", CLIENT_SECRET],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    processes = [
        subprocess.Popen(
            [*command, *args],
            env=env,
            stdout=open(tmp_path / f"{args[0]}.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for args in (["serve", "--port", str(port), "--workers", "2"], ["worker", "--concurrency", "2"])
    ]
    try:
        wait_for_port(port, processes[0])
        yield f"http://127.0.0.1:{port}", home, tmp_path
    finally:
        for process in processes:
            os.killpg(process.pid, 15)
        for process in processes:
            process.wait(20)
        redis.stop()


def test_the_worker_recipe_on_sqlite_answers_no_5xx_and_leaves_no_failed_request_behind(sqlite_stack):
    import shutil

    from plugin_app.standalone.cli import SAMPLE_COURSES
    from tests.conftest import CLIENT_ID, CLIENT_SECRET
    from tutor_exportbulk.client import OpenedxRESTAPIClient

    base_url, home, logs = sqlite_stack
    courses = []
    for n in range(8):
        org = f"Lite{n}"
        shutil.copytree(SAMPLE_COURSES / "sample", home / "courses" / org)
        pointer = home / "courses" / org / "course.xml"
        pointer.write_text(pointer.read_text().replace('org="ExportBulk"', f'org="{org}"'))
        courses.append(f"course-v1:{org}+Sample+2026")
    errors: list[str] = []
    accepted: list[str] = []
    OpenedxRESTAPIClient(base_url, CLIENT_ID, CLIENT_SECRET).export_courses(courses)  # in the server

    def session(n: int) -> None:
        client = OpenedxRESTAPIClient(base_url, CLIENT_ID, CLIENT_SECRET, max_tries=1)
        for round_ in range(3):
            try:
                accepted.append(client.export_courses(courses, async_=True)["processId"])
                source, target = f"{courses[n]}.tar.gz", f"course-v1:New{n}+Sample+R{round_}"
                accepted.append(client.restore([{"source": source, "course_id": target}])["processId"])
                client.process_list("export")
            except OpenedxAPIError as error:
                errors.append(f"{n}.{round_}: {error}")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(session, range(6)))

    client = OpenedxRESTAPIClient(base_url, CLIENT_ID, CLIENT_SECRET)
    ended = [list(client.wait(p, None, interval=0.2, timeout=300))[-1]["status"] for p in accepted]
    assert errors == []
    assert len(accepted) == 36 and set(ended) == {"Completed"}
    recorded = client.process_list("export")["count"] + client.process_list("restore")["count"]
    assert recorded == len(accepted) + 1  # and the first, synchronous export
    assert "database is locked" not in (logs / "serve.log").read_text() + (logs / "worker.log").read_text()
