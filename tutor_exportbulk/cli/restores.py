"""`restore`: course tarballs into courses, every check first; from the bucket, a backup run or files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.output import ExitCode, print_records
from tutor_exportbulk.cli.processes import queued, show_process
from tutor_exportbulk.cli.runtime import Runtime, api_command, interval_option

_STYLES = {"restored": "green", "would restore": "green", "failed": "red"}


def items_of_backup_run(manifest: Path) -> list[dict[str, str]]:
    """Every course a backup run manifest lists with a version (exported or unchanged)."""
    try:
        courses = json.loads(manifest.read_text(encoding="utf-8"))["courses"]
        return [
            {"source": course["key"], "course_id": course["course_id"]}
            for course in courses
            if course.get("status") != "failed" and course.get("key")
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(
            f"not a backup run manifest ({exc})", param_hint="--from-backup-run"
        ) from exc


def print_restores(console: Console, result: dict[str, Any]) -> None:
    """Each item with its outcome and reason, then the olxcleaner findings of each course."""
    items = result.get("items") or []
    rows = [
        (
            item.get("course_id"),
            item.get("source"),
            Text(str(item.get("status")), _STYLES.get(str(item.get("status")), "")),
            item.get("reason") or "",
            item.get("findings_total", len(item.get("findings") or [])),
        )
        for item in items
    ]
    headers = ("Course", "Source", "Outcome", "Reason", "Findings")
    print_records(console, "Restores", headers, rows, copyable=("Course", "Source"))
    for item in items:
        findings = item.get("findings") or []
        if findings:
            table = [(f.get("level"), f.get("file"), f.get("message")) for f in findings]
            title = f"olxcleaner findings of {item.get('course_id')}"
            print_records(console, title, ("Level", "File", "Finding"), table, copyable=("File",))


@api_command("restore")
@click.argument("pairs", nargs=-1, metavar="[SOURCE COURSE_ID]...")
@click.option(
    "--from-backup-run",
    "run_manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Restore every course of a backup run, from its manifest (backups/runs/...json).",
)
@click.option("--dry-run", is_flag=True, help="Run every check and change nothing.")
@click.option("--overwrite", is_flag=True, help="Replace courses that exist.")
@click.option("--wait", is_flag=True, help="Follow the restore to the end, then show each course's outcome.")
@interval_option
def restore(
    runtime: Runtime,
    pairs: tuple[str, ...],
    run_manifest: Path | None,
    dry_run: bool,
    overwrite: bool,
    wait: bool,
    interval: float,
) -> int:
    """Restore courses: SOURCE COURSE_ID pairs, or --from-backup-run RUN_MANIFEST.

    SOURCE is a local .tar.gz file (uploaded with the request), an object key of the bucket (an
    export or a backup version), or backup:latest / backup:<timestamp> of COURSE_ID itself. A
    COURSE_ID may be a v2 library key (lib:ORG:SLUG): its SOURCE is then a library backup (.zip).
    """
    if bool(pairs) == bool(run_manifest) or len(pairs) % 2:
        raise click.UsageError(
            "Give SOURCE COURSE_ID pairs, or --from-backup-run RUN_MANIFEST (one of them)."
        )
    items = items_of_backup_run(run_manifest) if run_manifest else []
    files: list[Path] = []
    for source, course_id in zip(pairs[::2], pairs[1::2], strict=True):
        path = Path(source)
        if path.is_file():
            files.append(path)
            source = path.name
        items.append({"source": source, "course_id": course_id})
    if not items:
        raise click.UsageError("The backup run lists no course version to restore.")
    answer = runtime.client.restore(items, files=files, dry_run=dry_run, overwrite=overwrite)
    if not wait:
        return queued(runtime, "restore", answer)
    result = runtime.follow(answer["processId"], "restore", interval)
    code = show_process(runtime, "restore", result)
    if not runtime.as_json:
        print_restores(runtime.console, result)
    return code or (ExitCode.FAILED if result.get("failedCount") else ExitCode.OK)
