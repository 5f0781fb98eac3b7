"""The commands of every process kind: `status`, `list`, `download`, `report`; how a status is shown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click
import requests
from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.output import ExitCode, print_exports, print_fields, print_records
from tutor_exportbulk.cli.runtime import Runtime, api_command, interval_option
from tutor_exportbulk.client import FINAL_STATUSES, OpenedxAPIError
from tutor_exportbulk.client.errors import no_answer
from tutor_exportbulk.client.processes import STATUS_PATHS

KINDS = tuple(STATUS_PATHS)
_STATUS_FIELDS = (
    "status", "totalCount", "successCount", "failedCount", "canceledCount", "startTime", "endTime", "report",
    "manifest",
)  # fmt: skip


def show_process(runtime: Runtime, kind: str | None, result: dict[str, Any], waiting: str = "") -> int:
    """Show a process's status, and the next step; 1 when it failed or any of its items did.

    ``waiting``: the next step while the process is still active (default: follow it)."""
    kind = result.get("kind") or kind or "process"
    process_id = result.get("processId")

    def render(console: Console) -> None:
        rows: list[tuple[str, Any]] = [
            (key, result[key]) for key in _STATUS_FIELDS if result.get(key) is not None
        ]
        if result.get("error"):
            rows.append(("error", Text(str(result["error"]), "red")))
        print_fields(console, f"{kind} {process_id}", rows)
        if "successful_uploads" in result:
            print_exports(console, result)

    runtime.emit(result, render)
    if result.get("status") not in FINAL_STATUSES:
        runtime.hint(waiting or f"Next: {{prog}} status {process_id} --wait")
    elif result.get("report") or result.get("successful_uploads"):
        what = "the exported files and the report" if result.get("successful_uploads") else "the report"
        if result.get("manifest"):
            what = "the report and the run manifest"
        runtime.hint(f"Next: {{prog}} download {process_id} ({what}), or {{prog}} report {process_id}")
    failed = result.get("status") in ("Failed", "Canceled") or (result.get("failedCount") or 0) > 0
    return ExitCode.FAILED if failed else ExitCode.OK


def queued(runtime: Runtime, kind: str, answer: dict[str, Any]) -> int:
    """What a command that queued work prints: the process id, and how to follow it."""
    process_id = answer["processId"]
    runtime.emit(answer, lambda console: console.print(f"{kind} queued: {process_id}", soft_wrap=True))
    runtime.hint(f"Next: {{prog}} status {process_id} --wait")
    return ExitCode.OK


kind_option = click.option(
    "--kind", type=click.Choice(KINDS), help="The kind of process (default: whichever it is)."
)


def _status(runtime: Runtime, process_id: str, kind: str | None) -> dict[str, Any]:
    client = runtime.client
    return client.process(process_id) if kind is None else client.process_status(kind, process_id)


@api_command("status")
@click.argument("process_id")
@kind_option
@click.option("--wait", is_flag=True, help="Follow the process to its end.")
@interval_option
def status(runtime: Runtime, process_id: str, kind: str | None, wait: bool, interval: float) -> int:
    """Show the status of a process of any kind (export, upload, ...)."""
    result = runtime.follow(process_id, kind, interval) if wait else _status(runtime, process_id, kind)
    return show_process(runtime, kind, result)


@api_command("cancel")
@click.argument("process_id")
@kind_option
def cancel(runtime: Runtime, process_id: str, kind: str | None) -> int:
    """Cancel a process: items not started are dropped, running ones finish first."""
    result = runtime.client.cancel(process_id, kind)
    show_process(
        runtime, kind, result, f"Next: items still running finish first; {{prog}} status {process_id} --wait"
    )
    return ExitCode.OK


@api_command("list")
@kind_option
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1), help="Page, newest first.")
def list_processes(runtime: Runtime, kind: str | None, page: int) -> None:
    """List your processes of every kind, newest first (--json: each kind's page as the API answers)."""
    pages = {name: runtime.client.process_list(name, page) for name in ([kind] if kind else KINDS)}

    def render(console: Console) -> None:
        rows = [
            (item.get("processId"), name, item.get("uploadedDate"), item.get("status"))
            for name, result in pages.items()
            for item in result.get(f"{name}s", result.get("uploads", []))
        ]
        rows.sort(key=lambda row: str(row[2] or ""), reverse=True)  # UTC times sort as text: newest first
        headers = ("Process id", "Kind", "Started", "Status")
        print_records(console, "Processes", headers, rows, copyable=("Process id",))

    runtime.emit(pages, render)


@api_command("download")
@click.argument("process_id")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The directory to write the files to (made if missing).",
)
def download(runtime: Runtime, process_id: str, output: Path) -> int:
    """Download the files of a finished process: each exported course, the report, a backup's run manifest."""
    result = runtime.client.process(process_id)
    if result.get("status") not in FINAL_STATUSES:
        raise click.ClickException(
            f"Process {process_id} is {result.get('status')}; wait for it: "
            f"{runtime.prog} status {process_id} --wait"
        )
    urls = [
        *(result.get("successful_uploads") or {}).values(),
        *(result[name] for name in ("report", "manifest") if result.get(name)),
    ]
    output.mkdir(parents=True, exist_ok=True)
    files = [str(runtime.client.download(url, output)) for url in urls]

    def render(console: Console) -> None:
        console.print(f"{len(files)} file(s) in {output}", soft_wrap=True)
        for name in files:
            console.print(Text(name), soft_wrap=True)

    runtime.emit({"processId": process_id, "files": files}, render)
    return ExitCode.FAILED if result.get("failed_uploads") or not files else ExitCode.OK


# The columns of an upload report a person needs (the manifest's own columns are also there).
_REPORT_COLUMNS = ("file", "status", "asset_url", "usage_key", "error")


@api_command("report")
@click.argument("process_id")
def report(runtime: Runtime, process_id: str) -> int:
    """Print the outcome of each row of an upload (or course of any other kind) from its report."""
    result = runtime.client.process(process_id)
    if not result.get("report"):
        why = result.get("reportMissing") or "it has not ended"
        raise click.ClickException(f"Process {process_id} ({result.get('status')}) has no report: {why}")
    rows = [_unpacked(row) for row in _read_report(result["report"], runtime.client.timeout)]
    if rows and "file" in rows[0]:
        columns = list(_REPORT_COLUMNS)
    else:
        columns = list(dict.fromkeys(column for row in rows for column in row if column))

    def render(console: Console) -> None:
        table = [[row.get(column, "") for column in columns] for row in rows]
        title = f"{result.get('kind', 'process')} {process_id}: {len(rows)} row(s)"
        print_records(
            console, title, columns, table, copyable=columns[:1] + ["asset_url", "usage_key", "object"]
        )

    runtime.emit(rows, render)
    return ExitCode.FAILED if any(row.get("status") == "failed" for row in rows) else ExitCode.OK


def _unpacked(row: dict[str, str]) -> dict[str, str]:
    """A report row whose ``result`` cell is JSON (backups, restores) as one column per value
    (lists, such as findings, are counted); ``fingerprint`` is left out, only machines read it."""
    try:
        result = json.loads(row.get("result") or "null")
    except ValueError:
        return row
    if not isinstance(result, dict):
        return row
    values = {
        key: str(len(value)) if isinstance(value, list) else str(value)
        for key, value in result.items()
        if key != "fingerprint" and not isinstance(value, dict)
    }
    return {
        **{k: v for k, v in row.items() if k not in ("result", "error")},
        **values,
        "error": row.get("error", ""),
    }


def _read_report(url: str, timeout: float) -> list[dict[str, str]]:
    """The report CSV's rows (signed URL: no token is sent)."""
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise OpenedxAPIError(None, url, no_answer(exc)) from exc
    if response.status_code != 200:
        raise OpenedxAPIError(response.status_code, url, "The report could not be read.")
    reader = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    return [{(key or "").lower(): value or "" for key, value in row.items()} for row in reader]
