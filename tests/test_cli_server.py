"""
The ``exportbulk`` CLI against the app's real views over HTTP (pytest-django's live server,
tasks run eagerly, local storage): the commands that read what the server answers, whatever
kind of process it is.
"""

from __future__ import annotations

import csv
import json
import logging
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.builders import content_zip, manifest
from tests.conftest import SAMPLE_COURSE_ID
from tutor_exportbulk.cli import standalone_cli

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_ID, CLIENT_SECRET = "cli-client", "cli-client-secret"


@pytest.fixture
def run_cli(live_server, staff, olx_root, local_storage, caplog):
    """Runs ``exportbulk`` as the staff user's OAuth2 client; fails the test on any server 404."""
    from oauth2_provider.models import AbstractApplication, get_application_model

    get_application_model().objects.create(
        user=staff,
        name=CLIENT_ID,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_type=AbstractApplication.CLIENT_CONFIDENTIAL,
        authorization_grant_type=AbstractApplication.GRANT_CLIENT_CREDENTIALS,
    )
    env = {
        "EXPORTBULK_LMS_URL": live_server.url,
        "EXPORTBULK_CLIENT_ID": CLIENT_ID,
        "EXPORTBULK_CLIENT_SECRET": CLIENT_SECRET,
    }
    caplog.set_level(logging.WARNING, logger="django.request")

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(standalone_cli, list(args), env=env, input=input)

    run.env = env  # type: ignore[attr-defined]
    yield run
    assert not [r for r in caplog.records if r.name == "django.request" and "Not Found" in r.getMessage()]


def test_export_then_status_download_and_report_without_kind(run_cli, tmp_path, sample_course):
    queued = run_cli("export", SAMPLE_COURSE_ID, "course-v1:No+Such+Course", "--async")
    assert queued.exit_code == 0, queued.output
    process_id = queued.stdout.split("export queued: ")[1].split()[0]
    assert f"Next: exportbulk status {process_id} --wait" in queued.stdout

    status = run_cli("status", process_id, "--json")
    assert status.exit_code == 1  # one course failed
    assert json.loads(status.stdout)["kind"] == "export"
    followed = run_cli("status", process_id, "--wait", "--interval", "0.05")
    assert followed.exit_code == 1 and "Completed" in followed.stdout
    assert f"Next: exportbulk download {process_id}" in followed.stdout

    downloaded = run_cli("download", process_id, "--output", str(tmp_path / "out"), "--json")
    files = [Path(name) for name in json.loads(downloaded.stdout)["files"]]
    assert downloaded.exit_code == 1  # the failed course has no file
    tarball = next(f for f in files if f.name.endswith(".tar.gz"))
    with tarfile.open(tarball) as tar:
        assert "2026/course.xml" in tar.getnames()
    report = next(f for f in files if f.suffix == ".csv")
    rows = list(csv.DictReader(report.read_text("utf-8-sig").splitlines()))
    assert [(r["course_id"], r["status"]) for r in rows] == [
        (SAMPLE_COURSE_ID, "success"),
        ("course-v1:No+Such+Course", "failed"),
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f.name for f in files)  # no .part

    printed = run_cli("report", process_id)
    assert printed.exit_code == 1
    assert "Course not found." in printed.stdout


def test_upload_report_prints_each_rows_outcome(run_cli, tmp_path, sample_course):
    rows = [
        {"course_id": SAMPLE_COURSE_ID, "file": "notes.pdf", "unit": "S / SS / U"},
        {
            "course_id": SAMPLE_COURSE_ID,
            "file": "gone.pdf",
            "unit": "block-v1:ExportBulk+Sample+2026+type@vertical+block@nowhere",
        },
    ]
    (tmp_path / "m.csv").write_bytes(manifest(rows))
    (tmp_path / "c.zip").write_bytes(content_zip({"notes.pdf": b"%PDF-1.4 a", "gone.pdf": b"%PDF-1.4 b"}))
    queued = run_cli(
        "upload", str(tmp_path / "m.csv"), "--content", str(tmp_path / "c.zip"), "--mode", "link"
    )
    assert queued.exit_code == 0, queued.output
    process_id = queued.stdout.split("upload queued: ")[1].split()[0]

    printed = run_cli("report", process_id, "--json")
    assert printed.exit_code == 1  # one row failed
    outcome = {row["file"]: row for row in json.loads(printed.stdout)}
    assert outcome["notes.pdf"]["status"] == "success"
    assert outcome["notes.pdf"]["asset_url"] == "/asset-v1:ExportBulk+Sample+2026+type@asset+block@notes.pdf"
    assert outcome["notes.pdf"]["usage_key"].startswith("block-v1:ExportBulk+Sample+2026+type@html+block@")
    assert outcome["gone.pdf"]["status"] == "failed" and "is not a unit" in outcome["gone.pdf"]["error"]

    human = run_cli("report", process_id)
    assert (
        "  asset_url: /asset-v1:ExportBulk+Sample+2026+type@asset+block@notes.pdf"
        in human.stdout.splitlines()
    )

    downloaded = run_cli("download", process_id, "--output", str(tmp_path / "out"))
    assert downloaded.exit_code == 0, downloaded.output
    assert [p.suffix for p in (tmp_path / "out").iterdir()] == [".csv"]


def test_unknown_process_is_exit_2_for_every_command(run_cli):
    for command in ("status", "download", "report"):
        result = run_cli(command, "0" * 32)
        assert result.exit_code == 2, (command, result.output)


def listed_ids(output: str) -> list[str]:
    """The process ids of piped ``list`` output (each row's id on a line of its own)."""
    return [line for line in output.splitlines()[1:] if line and not line.startswith(" ")]


def test_list_is_newest_first_across_kinds(run_cli, sample_course, not_sent):
    first = queued_export(run_cli)
    backup = run_cli("backup", SAMPLE_COURSE_ID, "--json")
    assert backup.exit_code == 0, backup.output
    last = queued_export(run_cli)
    assert listed_ids(run_cli("list").stdout) == [last, json.loads(backup.stdout)["processId"], first]


def test_list_shows_exports_and_uploads(run_cli, sample_course):
    queued = run_cli("export", SAMPLE_COURSE_ID, "--async", "--json")
    process_id = json.loads(queued.stdout)["processId"]
    listed = run_cli("list", "--json")
    pages = json.loads(listed.stdout)
    assert [p["processId"] for p in pages["export"]["exports"]] == [process_id]
    assert pages["upload"]["uploads"] == []


@pytest.fixture
def not_sent(monkeypatch):
    """Processes stay queued: no worker takes them."""
    from plugin_app import lifecycle

    monkeypatch.setattr(lifecycle, "dispatch", lambda process_id: None)


def queued_export(run_cli) -> str:
    queued = run_cli("export", SAMPLE_COURSE_ID, "--async")
    assert queued.exit_code == 0, queued.output
    return queued.stdout.split("export queued: ")[1].split()[0]


def test_cancel_command_cancels_a_queued_process(run_cli, sample_course, not_sent):
    process_id = queued_export(run_cli)
    canceled = run_cli("cancel", process_id, "--json")
    assert canceled.exit_code == 0, canceled.output
    result = json.loads(canceled.stdout)
    assert (result["status"], result["canceledCount"]) == ("Canceled", 1)
    assert run_cli("cancel", "f" * 32).exit_code == 2


def test_ctrl_c_while_waiting_asks_whether_to_cancel(run_cli, sample_course, not_sent, monkeypatch):
    import time
    from types import SimpleNamespace

    from tutor_exportbulk.client import processes

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt  # the person presses Ctrl-C between two polls

    process_id = queued_export(run_cli)
    monkeypatch.setattr(processes, "time", SimpleNamespace(monotonic=time.monotonic, sleep=interrupted))
    kept = run_cli("status", process_id, "--wait", input="n\n")
    assert kept.exit_code == 130 and f"Cancel {process_id}?" in kept.output  # goes on: interrupted
    assert json.loads(run_cli("status", process_id, "--json").stdout)["status"] == "Queued"

    canceled = run_cli("status", process_id, "--wait", input="y\n")
    assert canceled.exit_code == 1 and "Canceled" in canceled.stdout  # did not complete
    assert json.loads(run_cli("status", process_id, "--json").stdout)["status"] == "Canceled"


def test_too_many_active_processes_is_exit_2_with_when_to_retry(run_cli, sample_course, not_sent, settings):
    settings.EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER = 1
    queued_export(run_cli)
    refused = run_cli("export", SAMPLE_COURSE_ID, "--async")
    assert refused.exit_code == 2
    assert "429" in refused.output and "Try again in 30 seconds" in refused.output


def test_token_429_says_to_wait_and_check_the_secret(run_cli, settings):
    """A held sign-in is not about processes: the hint names the wait and the secret (issue 25.2)."""
    from django.core.cache import cache

    cache.clear()
    settings.EXPORTBULK_AUTH_FAILURE_RATE = "1/m"
    wrong = CliRunner().invoke(
        standalone_cli, ["list"], env={**run_cli.env, "EXPORTBULK_CLIENT_SECRET": "wrong"}
    )
    assert wrong.exit_code == 2
    held = run_cli("list")
    assert held.exit_code == 2 and "429" in held.output
    assert "Try again in 60 seconds, and check the client secret" in held.output
    assert "cancel" not in held.output


def test_backups_of_a_course_that_does_not_exist_is_an_error_not_an_empty_list(run_cli, sample_course):
    missing = run_cli("backups", "course-v1:No+Such+Course")
    assert missing.exit_code == 2, missing.output
    assert "404" in missing.output and "course-v1:No+Such+Course does not exist" in missing.output
    listed = run_cli("backups", SAMPLE_COURSE_ID, "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


def test_cancel_says_next_once_and_status_keeps_the_start_time(run_cli, sample_course, not_sent):
    """Piped status is one ``name: value`` line per field, canceledCount included (issue 25.8)."""
    from datetime import timedelta

    from plugin_app.data import ItemStatus
    from plugin_app.models import BulkItem, BulkProcess
    from plugin_app.rest_api.v0.envelope import format_time

    process_id = queued_export(run_cli)
    BulkProcess.objects.update(created=BulkProcess.objects.get().created - timedelta(hours=1))
    created = BulkProcess.objects.get().created
    canceled = run_cli("cancel", process_id)
    assert canceled.exit_code == 0, canceled.output
    assert canceled.stdout.count("Next:") == 1
    lines = run_cli("status", process_id).stdout.splitlines()
    assert "status: Canceled" in lines and "canceledCount: 1" in lines
    assert f"startTime: {format_time(created)}" in lines  # never started: not the cancel's time

    running = queued_export(run_cli)  # an item running elsewhere: the process ends after it
    BulkItem.objects.filter(process__process_id=running).update(
        status=ItemStatus.RUNNING,
        lease_expires=BulkProcess.objects.get(process_id=running).created + timedelta(hours=1),
    )
    still = run_cli("cancel", running)
    assert "status: Canceled" not in still.stdout and still.stdout.count("Next:") == 1, still.stdout
    assert "items still running finish first" in still.stdout


def test_synchronous_export_prints_its_process_id(run_cli, sample_course):
    exported = run_cli("export", SAMPLE_COURSE_ID)
    assert exported.exit_code == 0, exported.output
    process_id = exported.stdout.split("Process ")[1].split(":")[0]
    assert f"exportbulk report {process_id}" in exported.stdout
    assert run_cli("report", process_id).exit_code == 0


def test_backup_manifest_report_and_verify_through_the_cli(run_cli, tmp_path, sample_course, local_storage):
    done = run_cli("backup", SAMPLE_COURSE_ID, "--wait", "--interval", "0.05", "--json")
    assert done.exit_code == 0, done.output
    process_id = json.loads(done.stdout)["processId"]
    assert json.loads(run_cli("status", process_id, "--json").stdout)["manifest"]  # without --kind
    downloaded = run_cli("download", process_id, "--output", str(tmp_path), "--json")
    files = [Path(name) for name in json.loads(downloaded.stdout)["files"]]
    manifest = next(f for f in files if f.suffix == ".json")
    assert json.loads(manifest.read_text())["processId"] == process_id
    restore_plan = run_cli("restore", "--from-backup-run", str(manifest), "--dry-run", "--json")
    assert restore_plan.exit_code == 0, restore_plan.output

    report = run_cli("report", process_id)
    assert report.exit_code == 0 and "{" not in report.stdout
    assert "  outcome: exported" in report.stdout.splitlines()

    key = json.loads(done.stdout)["items"][0]["key"]
    (Path(local_storage) / key).write_bytes(b"tampered")
    checked = run_cli("verify", process_id)
    assert checked.exit_code == 1
    size = json.loads(done.stdout)["items"][0]["size"]
    assert f"MISMATCH: expected {size} bytes" in checked.stdout and "got 8 bytes" in checked.stdout


def test_reasons_name_the_cli_flag_not_the_api_field(run_cli, sample_course, tmp_path):
    exported = run_cli("export", SAMPLE_COURSE_ID, "--json")
    source = json.loads(exported.stdout)["successful_uploads"][SAMPLE_COURSE_ID]
    key = f"{SAMPLE_COURSE_ID}.tar.gz"
    refused = run_cli("restore", key, SAMPLE_COURSE_ID, "--wait", "--interval", "0.05")
    assert refused.exit_code == 1, refused.output
    assert "use --overwrite" in refused.stdout and "set overwrite" not in refused.stdout
    as_json = run_cli("restore", key, SAMPLE_COURSE_ID, "--wait", "--interval", "0.05", "--json")
    assert "set overwrite" in as_json.stdout  # scripts get the API's own words
    assert source


def test_top_level_help_names_backup_and_restore():
    helped = CliRunner().invoke(standalone_cli, ["--help"])
    summary = helped.output.split("Options:")[0]
    assert "backups" in summary and "restore" in summary
