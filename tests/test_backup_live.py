"""
Backups on the live stack: gunicorn, a real Celery worker on Redis, MariaDB, moto's S3 server
behind a fault proxy. The CLI and the command drive it as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from click.testing import CliRunner

from tests.conftest import CLIENT_ID, CLIENT_SECRET, FAST_RESUME, SAMPLE_COURSE_ID, SERVICE_USER
from tests.faults import Fault, is_upload_part
from tutor_exportbulk.cli import standalone_cli

pytestmark = pytest.mark.live


def add_live_course(live, org: str) -> str:
    """A copy of the sample course under a new org in the stack's OLX root; its id."""
    shutil.copytree(live.olx_root / "sample", live.olx_root / org)
    pointer = live.olx_root / org / "course.xml"
    pointer.write_text(re.sub(r'org="[^"]*"', f'org="{org}"', pointer.read_text()))
    return SAMPLE_COURSE_ID.replace("ExportBulk", org)


def cli(live, *args: str) -> tuple[int, str]:
    env = {
        "EXPORTBULK_LMS_URL": live.base_url,
        "EXPORTBULK_CLIENT_ID": CLIENT_ID,
        "EXPORTBULK_CLIENT_SECRET": CLIENT_SECRET,
    }
    result = CliRunner().invoke(standalone_cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def keys(live, prefix: str) -> set[str]:
    listing = live.s3.list_objects_v2(Bucket=live.bucket, Prefix=prefix)
    return {obj["Key"] for obj in listing.get("Contents", [])}


def open_uploads(live) -> list[str]:
    return [u["Key"] for u in live.s3.list_multipart_uploads(Bucket=live.bucket).get("Uploads", [])]


def run(live, *course_ids: str) -> dict:
    client = live.client()
    process_id = client.backup_courses(list(course_ids))["processId"]
    return list(client.wait(process_id, kind="backup", interval=0.2, timeout=120))[-1]


def test_cli_backs_up_only_what_changed_and_verifies_every_object(live):
    org = f"Live{uuid.uuid4().hex[:6]}"
    courses = [add_live_course(live, f"{org}A"), add_live_course(live, f"{org}B")]
    code, output = cli(live, "--json", "backup", *courses, "--wait")
    first = json.loads(output)
    assert code == 0 and [i["status"] for i in first["items"]] == ["exported", "exported"]
    code, output = cli(live, "--json", "backup", *courses, "--wait")
    assert code == 0 and [i["status"] for i in json.loads(output)["items"]] == ["unchanged", "unchanged"]
    (live.olx_root / f"{org}B" / "static" / "new.txt").write_text("a new asset")
    code, output = cli(live, "--json", "backup", *courses, "--wait")
    third = json.loads(output)
    assert [i["status"] for i in third["items"]] == ["unchanged", "exported"]

    code, output = cli(live, "--json", "verify", third["processId"])
    checks = json.loads(output)["objects"]
    assert code == 0 and len(checks) == 2 and all(c["ok"] for c in checks)
    code, output = cli(live, "--json", "backups", courses[1])
    versions = json.loads(output)
    assert code == 0 and [v["key"] for v in versions] == [third["items"][1]["key"], first["items"][1]["key"]]

    # A tampered object fails verification.
    live.s3.put_object(Bucket=live.bucket, Key=third["items"][1]["key"], Body=b"not the backup")
    code, output = cli(live, "--json", "verify", third["processId"])
    assert code == 1 and [c["ok"] for c in json.loads(output)["objects"]] == [True, False]


def test_worker_killed_mid_upload_leaves_no_orphan_and_the_run_completes(live):
    course = add_live_course(live, f"Kill{uuid.uuid4().hex[:6]}")
    # Past one 8 MiB part, so that the tarball goes up as a multipart upload (a smaller one is one PUT).
    (live.olx_root / course.split(":")[1].split("+")[0] / "static" / "big.bin").write_bytes(
        os.urandom(10 * 2**20)
    )
    live.stop_workers()
    live.start_worker(**FAST_RESUME)
    client = live.client()
    live.s3_proxy.rule = lambda method, query: Fault(delay=4) if is_upload_part(method, query) else None
    try:
        process_id = client.backup_courses([course])["processId"]
        deadline = time.monotonic() + 60
        while not any(key.startswith(f"backups/{course}/") for key in open_uploads(live)):
            assert time.monotonic() < deadline, "the backup never started its upload"
            time.sleep(0.1)
        live.kill_workers()  # mid-upload: the multipart upload is open, the version recorded
    finally:
        live.s3_proxy.rule = None
    live.start_worker(**FAST_RESUME)
    final = list(client.wait(process_id, kind="backup", interval=0.2, timeout=120))[-1]
    assert final["status"] == "Completed" and [i["status"] for i in final["items"]] == ["exported"]

    assert not [key for key in open_uploads(live) if key.startswith(f"backups/{course}/")]
    assert keys(live, f"backups/{course}/") == {final["items"][0]["key"]}
    (manifest_key,) = [k for k in keys(live, "backups/runs/") if k.endswith(f"-{process_id}.json")]
    manifest = json.loads(live.s3.get_object(Bucket=live.bucket, Key=manifest_key)["Body"].read())
    assert [c["key"] for c in manifest["courses"]] == [final["items"][0]["key"]]
    # The next run completes, and finds the course current.
    assert [i["status"] for i in run(live, course)["items"]] == ["unchanged"]


def test_command_runs_through_the_workers_and_exits_1_when_a_course_fails(live):
    course = add_live_course(live, f"Cmd{uuid.uuid4().hex[:6]}")
    result = live.command("backup", "--user", SERVICE_USER, "--course", course)
    assert "1 exported, 0 unchanged, 0 failed" in result.stdout
    (live.olx_root / course.split(":")[1].split("+")[0] / "static" / "new.txt").write_text("changed")
    here = live.command("backup", "--user", SERVICE_USER, "--course", course, "--in-process")  # no worker
    assert "1 exported, 0 unchanged, 0 failed" in here.stdout
    missing = "course-v1:Nobody+Nothing+2026"
    failed = subprocess.run(
        [sys.executable, "-m", "plugin_app.standalone", "backup", "--user", SERVICE_USER, "--course", course,
         "--course", missing],
        env=live.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "0 exported, 1 unchanged, 1 failed" in failed.stdout and "Course not found." in failed.stdout


def test_retention_on_the_worker_keeps_the_newest_versions_of_changed_courses_only(live):
    live.stop_workers()
    live.start_worker(EXPORTBULK_BACKUP_KEEP="2")  # read from the environment, as the standalone project does
    try:
        org = f"Keep{uuid.uuid4().hex[:6]}"
        changing, steady = add_live_course(live, f"{org}A"), add_live_course(live, f"{org}B")
        finals = []
        for n in range(4):
            (live.olx_root / f"{org}A" / "static" / "counter.txt").write_text(str(n))
            finals.append(run(live, changing, steady))
        written = [final["items"][0]["key"] for final in finals]
        assert [final["items"][0]["status"] for final in finals] == ["exported"] * 4
        assert [final["items"][1]["status"] for final in finals] == ["exported"] + ["unchanged"] * 3
        assert keys(live, f"backups/{changing}/") == set(written[2:])
        assert keys(live, f"backups/{steady}/") == {finals[0]["items"][1]["key"]}
    finally:
        live.stop_workers()
        live.start_worker()
