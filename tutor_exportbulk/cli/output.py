"""How results reach a person or a script: tables, progress bars, JSON, errors and exit codes."""

from __future__ import annotations

import json
from typing import IO, Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tutor_exportbulk.client import OpenedxAPIError, OpenedxAuthError


def exit_code_for(error: OpenedxAPIError) -> int:
    """2 when the credentials or permissions are wrong, 1 for any other failure."""
    return 2 if isinstance(error, OpenedxAuthError) or error.status_code in (401, 403) else 1


class CommandFailed(click.ClickException):
    """An API error, reported with its exit code (see ``exit_code_for``)."""

    def __init__(self, error: OpenedxAPIError, as_json: bool) -> None:
        super().__init__(str(error))
        self.error, self.as_json = error, as_json
        self.exit_code = exit_code_for(error)  # type: ignore[misc]  # click declares it on the class

    def show(self, file: IO[Any] | None = None) -> None:
        if self.as_json:
            error = self.error
            details = {"status_code": error.status_code, "url": error.url, "message": error.message}
            click.echo(json.dumps({"error": {**details, "body": error.body}}, indent=2))
        super().show(file)
        errors = row_errors(self.error.body)
        if errors and not self.as_json:
            Console(stderr=True).print(row_error_table(errors))


def new_table(*headers: str, **options: Any) -> Table:
    """A table whose long ids and URLs fold onto more lines instead of being cut with "…"."""
    table = Table(**options)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def add_row(table: Table, *cells: Any) -> None:
    """A table row of server data, shown as text (a ``[`` in a course name is not markup)."""
    table.add_row(
        *(cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in cells)
    )


def row_errors(body: Any) -> list[dict[str, Any]]:
    """The per-row problems a refused bulk upload lists in ``result.errors``."""
    result = body.get("result") if isinstance(body, dict) else None
    errors = result.get("errors") if isinstance(result, dict) else None
    return errors if isinstance(errors, list) else []


def row_error_table(errors: list[dict[str, Any]]) -> Table:
    table = new_table("Row", "Column", "Problem", title="Refused; nothing was uploaded")
    for error in errors:
        add_row(table, error.get("row") or "-", error.get("column"), error.get("message"))
    return table


def print_exports(console: Console, answer: dict[str, Any]) -> None:
    """Each exported course with its URL, each refused one with the reason."""
    table = new_table("Course", "Result")
    for course_id, url in (answer.get("successful_uploads") or {}).items():
        add_row(table, course_id, Text(url, "green"))
    for course_id, reason in (answer.get("failed_uploads") or {}).items():
        add_row(table, course_id, Text(reason, "red"))
    console.print(table)
