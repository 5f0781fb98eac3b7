"""
The standalone project as operators start it: its settings from the environment, its first-time
set-up raced by ``serve`` and ``worker``, and what ``serve`` says and where it keeps its socket.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from plugin_app.settings.common import DEFAULTS
from plugin_app.standalone.cli import SAMPLE_COURSES
from plugin_app.standalone.environment import settings_from_environment
from tests.conftest import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPORTBULK_", "CELERY_", "AWS_"))}
    env.update(
        EXPORTBULK_HOME=str(tmp_path / "home"),
        HOME=str(tmp_path / "user"),  # the operator's own home: nothing may land there
        DJANGO_SETTINGS_MODULE="plugin_app.standalone.settings",
        PYTHONPATH=str(REPO),
        **extra,
    )
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def a_value_for(default):
    """A value of the default's type that is not the default, as it is written in the environment."""
    if isinstance(default, bool):
        return ("false" if default else "yes"), not default
    if isinstance(default, int):
        return str(default + 7), default + 7
    if isinstance(default, list):
        return "a.B, c.D", ["a.B", "c.D"]
    return "from-env", "from-env"


def test_every_app_setting_is_read_from_the_environment_with_its_type(tmp_path):
    values = {name: a_value_for(default) for name, default in DEFAULTS.items()}
    env = environment(tmp_path, **{name: text for name, (text, _) in values.items()})
    code = "import json, django; django.setup(); from django.conf import settings; print(json.dumps({n: getattr(settings, n) for n in %r}))"  # noqa: E501
    out = subprocess.run(
        [sys.executable, "-c", code % sorted(DEFAULTS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == {name: parsed for name, (_, parsed) in values.items()}


def test_a_setting_that_does_not_read_as_its_type_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="EXPORTBULK_UPLOAD_MAX_ROWS='many'"):
        settings_from_environment(DEFAULTS, {"EXPORTBULK_UPLOAD_MAX_ROWS": "many"})
    with pytest.raises(ImproperlyConfigured, match="EXPORTBULK_PUBLIC_URLS"):
        settings_from_environment(DEFAULTS, {"EXPORTBULK_PUBLIC_URLS": "maybe"})
    assert settings_from_environment(DEFAULTS, {"EXPORTBULK_BUCKET": ""}) == DEFAULTS  # empty: unset
    as_json = settings_from_environment(DEFAULTS, {"EXPORTBULK_AUTHENTICATION_CLASSES": '["a.B"]'})
    assert as_json["EXPORTBULK_AUTHENTICATION_CLASSES"] == ["a.B"]


def test_first_time_setup_raced_by_many_processes_seeds_the_courses_once(tmp_path):
    """serve and worker started together on a fresh home both seed the courses: each must succeed,
    and find the whole sample course when it goes on (never another process's copy half-done)."""
    start_at = time.time() + 4  # the processes reach seed_courses together, a few ms apart
    code = (
        "import sys, time; from plugin_app.standalone.cli import setup_django, seed_courses; setup_django(); "
        "time.sleep(max(0, float(sys.argv[1]) - time.time())); root = seed_courses(); "
        "print(sorted(str(p.relative_to(root)) for p in root.rglob('*')))"
    )
    env = environment(tmp_path)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(start_at + i * 0.002)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    outcomes = [(racer.communicate(timeout=60), racer.returncode) for racer in racers]
    assert [err for (_, err), code in outcomes if code] == []
    expected = sorted(str(p.relative_to(SAMPLE_COURSES)) for p in SAMPLE_COURSES.rglob("*"))
    assert all(out.strip() == str(expected) for (out, _), _ in outcomes)
    root = tmp_path / "home" / "courses"
    assert [p.name for p in root.parent.iterdir() if p.name.startswith(".courses-")] == []


def _read_until(process: subprocess.Popen, log: Path, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if text in content:
            return content
        assert process.poll() is None, content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {log}: {log.read_text(errors='replace')}")


def test_serve_and_worker_started_together_both_come_up(tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = environment(
        tmp_path, CELERY_BROKER_URL="redis://:never-printed@127.0.0.1:6379/0", EXPORTBULK_CELERY_QUEUE=queue
    )
    port = free_port()
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "worker")}
    commands = {
        "serve": ["serve", "--port", str(port), "--workers", "1"],
        "worker": ["worker"],
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "plugin_app.standalone", *args],
            env=env,
            stdout=logs[name].open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, args in commands.items()
    }
    try:
        wait_for_port(port, processes["serve"])
        served = _read_until(processes["serve"], logs["serve"], "Listening at")
        _read_until(processes["worker"], logs["worker"], "ready.")
        assert f"Tasks go to the broker redis://127.0.0.1:6379/0, queue {queue}" in served
        assert "never-printed" not in served
        # gunicorn opens its control socket once the workers are spawned, after "Listening at".
        control = tmp_path / "home" / "gunicorn.ctl"
        for _ in range(100):
            if control.is_socket():
                break
            time.sleep(0.1)
        assert control.is_socket()
        assert not (tmp_path / "user" / ".gunicorn").exists()
    finally:
        for process in processes.values():
            os.killpg(process.pid, 15)
            process.wait(15)


def test_serve_without_a_broker_says_tasks_run_in_process(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin_app.standalone", "serve", "--port", str(port), "--workers", "1"],
        env=environment(tmp_path),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process)
        assert "Tasks run in-process (CELERY_BROKER_URL is not set)" in log.read_text()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        os.killpg(process.pid, 15)
        process.wait(15)


def test_the_demo_tells_its_story_and_sends_server_logs_to_a_file(tmp_path):
    """The demo's own lines are not interleaved with the server's logs (issue 25.8)."""
    demo = subprocess.run(
        [sys.executable, "-m", "plugin_app.standalone", "demo"],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    log = tmp_path / "home" / "demo.log"
    assert f"Server and worker logs: {log}" in output
    assert "Listening at" in log.read_text() and "[INFO]" in log.read_text()
    assert "[INFO]" not in output and "Listening at" not in output
    assert f"landed in the course folder {tmp_path / 'home' / 'courses' / 'sample'}" in output


def test_first_time_setup_seeds_the_sample_library_whatever_the_course_folder(tmp_path):
    (tmp_path / "own-courses").mkdir()  # an operator's folder: no sample course is copied there
    env = environment(tmp_path, EXPORTBULK_OLX_ROOT=str(tmp_path / "own-courses"))
    provision = [sys.executable, "-m", "plugin_app.standalone", "provision", "--username", "svc",
                 "--email", "svc@example.com", "--client-id", "c", "--client-secret", "s"]  # fmt: skip
    for _attempt in range(2):  # the second set-up finds the library and seeds nothing
        subprocess.run(provision, env=env, check=True, capture_output=True, timeout=300)
    code = (
        "import django; django.setup(); from openedx_content.models_api import Component; "
        "from plugin_app.backends import learning_core; "
        "print(learning_core.package_refs('lib:'), Component.objects.count())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("] ")[1].strip() == "3"
    assert "('lib:ExportBulk:sample-library', 'ExportBulk sample library')" in out.stdout
    assert list((tmp_path / "own-courses").iterdir()) == []
