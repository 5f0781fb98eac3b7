"""
Restore on the live stack: the client and the CLI against gunicorn, a Celery worker on Redis,
MariaDB and moto; then the worker SIGKILLed in the middle of a restore and started again.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAST_RESUME, SAMPLE_COURSE_ID, shared_courses
from tests.tarballs import big_course_tarball

pytestmark = pytest.mark.live


@pytest.fixture
def restored(live):
    """Course folders the test restores into, removed afterwards (the live stack is shared)."""
    folders: list[str] = []
    yield folders
    for name in folders:
        shutil.rmtree(live.olx_root / name, ignore_errors=True)


def exportbulk(live, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**live.env, "EXPORTBULK_LMS_URL": live.base_url, "EXPORTBULK_CLIENT_ID": CLIENT_ID,
           "EXPORTBULK_CLIENT_SECRET": CLIENT_SECRET, "COLUMNS": "250"}  # fmt: skip
    command = [str(Path(sys.executable).parent / "exportbulk"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_client_and_cli_restore_from_the_bucket_a_file_and_a_backup_run(live, tmp_path, restored):
    client = live.client()
    assert not client.export_courses([SAMPLE_COURSE_ID])["failed_uploads"]
    restored += ["Live+R1+2027", "Live+R3+2027"]

    started = client.restore(
        [{"source": f"{SAMPLE_COURSE_ID}.tar.gz", "course_id": "course-v1:Live+R1+2027"}]
    )
    final = list(client.wait(started["processId"], kind="restore", interval=0.2, timeout=120))[-1]

    assert final["status"] == "Completed" and final["items"][0]["status"] == "restored", final
    assert (live.olx_root / "Live+R1+2027" / "course" / "2027.xml").is_file()
    assert client.restore_status_list()["restores"][0]["processId"] == started["processId"]

    tarball = tmp_path / "sample.tar.gz"
    tarball.write_bytes(
        live.s3.get_object(Bucket=live.bucket, Key=f"{SAMPLE_COURSE_ID}.tar.gz")["Body"].read()
    )
    args = ["restore", "sample.tar.gz", "course-v1:Live+R2+2027", "--dry-run", "--wait", "--json"]
    dry = exportbulk(live, tmp_path, *args)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert json.loads(dry.stdout)["items"][0]["status"] == "would restore"
    assert not (live.olx_root / "Live+R2+2027").exists()

    stamp = "20261123T193000.000000Z"
    key = f"backups/course-v1:Live+R3+2027/{stamp}.tar.gz"
    live.s3.put_object(Bucket=live.bucket, Key=key, Body=tarball.read_bytes())
    manifest = {"processId": "0" * 32, "courses": [
        {"course_id": "course-v1:Live+R3+2027", "status": "exported", "key": key},
        {"course_id": "course-v1:Live+R4+2027", "status": "failed", "reason": "not backed up"},
    ]}  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(manifest))
    run = exportbulk(live, tmp_path, "restore", "--from-backup-run", "run.json", "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "course-v1:Live+R3+2027" in run.stdout and "restored" in run.stdout
    assert (live.olx_root / "Live+R3+2027" / "course.xml").read_text().count('org="Live"') == 1
    staged = live.s3.list_objects_v2(Bucket=live.bucket, Prefix="restores/").get("KeyCount")
    assert staged == 0, "an uploaded tarball outlived its process"


def test_a_multi_megabyte_tarball_streams_through_the_server_and_is_restored(live, tmp_path, restored):
    """Over Django's in-memory limit of 2.5 MiB, through gunicorn's ASGI body limit and the view."""
    data, noise = big_course_tarball(5 * 1024**2)
    tarball = tmp_path / "big.tar.gz"
    tarball.write_bytes(data)
    restored.append("Live+Big+2027")
    client = live.client()

    started = client.restore(
        [{"source": "big.tar.gz", "course_id": "course-v1:Live+Big+2027"}], files=[tarball]
    )
    final = list(client.wait(started["processId"], kind="restore", interval=0.2, timeout=120))[-1]

    assert final["items"][0]["status"] == "restored", final
    assert (live.olx_root / "Live+Big+2027" / "static" / "noise.bin").read_bytes() == noise


def _tarball_of(course: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(course, arcname=course.name)
    return out.getvalue()


def test_worker_killed_during_a_restore_then_restarted_ends_with_the_whole_course(live, restored):
    source = (shared_courses() or [live.olx_root / "sample"])[0]
    data = _tarball_of(source)
    live.s3.put_object(
        Bucket=live.bucket, Key="backups/course-v1:Kill+K1+2027/20261123T193000Z.tar.gz", Body=data
    )
    restored.append("Kill+K1+2027")
    live.stop_workers()
    live.start_worker(**FAST_RESUME)
    client = live.client()
    process_id = client.restore([{"source": "backup:latest", "course_id": "course-v1:Kill+K1+2027"}])[
        "processId"
    ]
    deadline = time.monotonic() + 60
    while client.restore_status(process_id)["items"][0]["status"] != "running":
        assert time.monotonic() < deadline, "the restore never started"
        time.sleep(0.05)

    live.kill_workers()
    live.start_worker(**FAST_RESUME)

    final = list(client.wait(process_id, kind="restore", interval=0.2, timeout=180))[-1]
    assert final["status"] == "Completed" and final["items"][0]["status"] == "restored", final
    course = live.olx_root / "Kill+K1+2027"
    files = sorted(p.relative_to(course).as_posix() for p in course.rglob("*") if p.is_file())
    run = (source / "course.xml").read_text().split('url_name="')[1].split('"')[0]
    expected = sorted(
        p.relative_to(source).as_posix().replace(f"course/{run}.xml", "course/2027.xml")
        .replace(f"policies/{run}/", "policies/2027/")
        for p in source.rglob("*") if p.is_file()
    )  # fmt: skip
    assert files == expected
    assert not any((live.olx_root / ".exportbulk-restore").iterdir())
