"""The commands of every process kind: `status`, `list`; and how a process status is shown."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.output import add_row, new_table, print_exports
from tutor_exportbulk.cli.runtime import Runtime, api_command
from tutor_exportbulk.client import OpenedxAPIError
from tutor_exportbulk.client.processes import STATUS_PATHS

KINDS = tuple(STATUS_PATHS)


def show_process(runtime: Runtime, kind: str, result: dict[str, Any]) -> int:
    """Show a process's status; 1 when it failed or any of its items did."""

    def render(console: Console) -> None:
        table = new_table("Field", "Value", show_header=False, title=f"{kind} {result.get('processId')}")
        for key in ("status", "totalCount", "successCount", "failedCount", "startTime", "endTime", "report"):
            if result.get(key) is not None:
                add_row(table, key, result[key])
        if result.get("error"):
            add_row(table, "error", Text(str(result["error"]), "red"))
        console.print(table)
        if "successful_uploads" in result:
            print_exports(console, result)

    runtime.emit(result, render)
    return 1 if result.get("status") == "Failed" or (result.get("failedCount") or 0) > 0 else 0


kind_option = click.option(
    "--kind", type=click.Choice(KINDS), help="The kind of process (default: every kind)."
)


@api_command("status")
@click.argument("process_id")
@kind_option
def status(runtime: Runtime, process_id: str, kind: str | None) -> int:
    """Show the status of an export or upload process."""
    client = runtime.client
    if kind is None:  # an id is either kind's: ask for an export first, then for an upload
        try:
            return show_process(runtime, "export", client.process_status("export", process_id))
        except OpenedxAPIError as error:
            if error.status_code != 404:
                raise
        kind = "upload"
    return show_process(runtime, kind, client.process_status(kind, process_id))


@api_command("list")
@kind_option
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1), help="Page, newest first.")
def list_processes(runtime: Runtime, kind: str | None, page: int) -> None:
    """List your export and upload processes, newest first."""
    pages = {name: runtime.client.process_list(name, page) for name in ([kind] if kind else KINDS)}

    def render(console: Console) -> None:
        table = new_table("Kind", "Process id", "Started", "Status")
        for name, result in pages.items():
            for item in result.get("uploads", []):
                add_row(table, name, item.get("processId"), item.get("uploadedDate"), item.get("status"))
        console.print(table)

    runtime.emit(pages, render)
