"""`backup`, `backups` and `verify`: dated course backups, their versions, and checking a run's objects."""

from __future__ import annotations

import hashlib
from typing import Any

import click
import requests
from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.output import ExitCode, print_records
from tutor_exportbulk.cli.processes import queued
from tutor_exportbulk.cli.runtime import Runtime, api_command, interval_option
from tutor_exportbulk.client import FINAL_STATUSES, OpenedxAPIError
from tutor_exportbulk.client.errors import no_answer

_STYLES = {"exported": "green", "unchanged": "cyan", "failed": "red"}


@api_command("backup")
@click.argument("course_ids", nargs=-1)
@click.option("--org", help="Every course and library of this organization the service user may author.")
@click.option("--all", "all_courses", is_flag=True, help="Every course and library the service user authors.")
@click.option("--changed-only/--no-changed-only", default=True, show_default=True)
@click.option("--wait", is_flag=True, help="Follow the run to its end and show each course's outcome.")
@interval_option
def backup(
    runtime: Runtime,
    course_ids: tuple[str, ...],
    org: str | None,
    all_courses: bool,
    changed_only: bool,
    wait: bool,
    interval: float,
) -> int:
    """Back up courses and v2 libraries as dated versions (changed ones only by default).

    COURSE_ID... (course ids or library keys lib:ORG:SLUG), --org ORG or --all.
    """
    if sum((bool(course_ids), org is not None, all_courses)) != 1:
        raise click.UsageError("Give course ids, --org ORG or --all (one of them).")
    answer = runtime.client.backup_courses(
        list(course_ids) or None, org=org, all=all_courses, changed_only=changed_only
    )
    if not wait:
        return queued(runtime, "backup", answer)
    return show_backup(runtime, runtime.follow(answer["processId"], "backup", interval))


def show_backup(runtime: Runtime, result: dict[str, Any]) -> int:
    """A backup run's courses: exported, unchanged or failed; 1 when the run or a course failed."""
    items = result.get("items") or []

    def render(console: Console) -> None:
        rows = [
            (
                item.get("course_id"),
                Text(str(item.get("status")), _STYLES.get(str(item.get("status")), "")),
                item.get("reason") or item.get("key"),
                item.get("size"),
            )
            for item in items
        ]
        title = f"backup {result.get('processId')} {result.get('status')}"
        print_records(
            console, title, ("Course", "Status", "Key or reason", "Size"), rows, copyable=("Course",)
        )
        counts = {status: sum(1 for i in items if i.get("status") == status) for status in _STYLES}
        console.print(", ".join(f"{n} {status}" for status, n in counts.items()), soft_wrap=True)

    runtime.emit(result, render)
    if result.get("status") in FINAL_STATUSES:
        runtime.hint(f"Next: {{prog}} verify {result.get('processId')}")
    failed = result.get("status") in ("Failed", "Canceled") or any(i.get("status") == "failed" for i in items)
    return ExitCode.FAILED if failed else ExitCode.OK


@api_command("backups")
@click.argument("course_id")
def backups(runtime: Runtime, course_id: str) -> None:
    """List the backup versions of a course (or library), newest first (time, size, sha256)."""
    versions = runtime.client.course_backups(course_id)

    def render(console: Console) -> None:
        rows = [(v.get("created"), v.get("size"), v.get("sha256"), v.get("key")) for v in versions]
        headers = ("Time (UTC)", "Size", "sha256", "Key")
        print_records(console, f"Backups of {course_id}", headers, rows, copyable=("sha256", "Key"))

    runtime.emit(versions, render)


@api_command("verify")
@click.argument("process_id")
def verify(runtime: Runtime, process_id: str) -> int:
    """Download every object of a backup run and check its size and sha256 against the run's manifest."""
    result = runtime.client.backup_status(process_id)
    if result.get("status") not in FINAL_STATUSES or not result.get("manifest"):
        raise click.ClickException(f"Backup {process_id} has no manifest yet ({result.get('status')}).")
    manifest = _fetch(result["manifest"], runtime.client.timeout).json()
    urls = {item["course_id"]: item.get("url") for item in result.get("items") or []}
    checks = []
    for entry in manifest["courses"]:
        if entry.get("key"):
            size, sha256 = _digest(urls.get(entry["course_id"]), runtime.client.timeout)
            ok = (size, sha256) == (entry["size"], entry["sha256"])
            checks.append({**entry, "ok": ok, "downloaded_size": size, "downloaded_sha256": sha256})

    def render(console: Console) -> None:
        rows = [(c["course_id"], _check(c), c["size"], c["key"]) for c in checks]
        print_records(console, f"Objects of backup {process_id}", ("Course", "Check", "Size", "Key"), rows)

    runtime.emit({"processId": process_id, "objects": checks}, render)
    return ExitCode.OK if all(c["ok"] for c in checks) else ExitCode.FAILED


def _check(check: dict[str, Any]) -> Text:
    """``ok``, or ``MISMATCH`` with what the manifest expects and what was downloaded."""
    if check["ok"]:
        return Text("ok", "green")
    expected = f"expected {check['size']} bytes, sha256 {check['sha256']}"
    actual = f"got {check['downloaded_size']} bytes, sha256 {check['downloaded_sha256']}"
    return Text(f"MISMATCH: {expected}; {actual}", "red")


def _fetch(url: str, timeout: float, stream: bool = False) -> requests.Response:
    """A GET of a signed URL (no token: it must never go to the bucket's host)."""
    try:
        response = requests.get(url, timeout=timeout, stream=stream)
    except requests.RequestException as exc:
        raise OpenedxAPIError(None, url, no_answer(exc)) from exc
    if response.status_code != 200:
        raise OpenedxAPIError(response.status_code, url, "The file could not be downloaded.")
    return response


def _digest(url: str | None, timeout: float) -> tuple[int | None, str | None]:
    """Size and sha256 of the bytes at ``url`` as stored (no content decoding); None when unlisted."""
    if not url:
        return None, None
    digest, size = hashlib.sha256(), 0
    with _fetch(url, timeout, stream=True) as response:
        for chunk in response.raw.stream(1 << 20, decode_content=False):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
