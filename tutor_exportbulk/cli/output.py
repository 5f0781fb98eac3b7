"""How results reach a person or a script: tables, records, JSON, errors and exit codes."""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Iterator, Sequence
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tutor_exportbulk.client import OpenedxAPIError, OpenedxAuthError


class ExitCode(enum.IntEnum):
    """The exit codes the README documents."""

    OK = 0
    FAILED = 1  # a course, a row or a process failed
    USAGE = 2  # usage, credentials, permission, a refused request (400), an unknown process (404),
    # too many active processes (429: try again later)
    UNREACHABLE = 3  # no answer from the server
    INTERRUPTED = 130  # Ctrl-C while waiting, and the process was left to go on (128 + SIGINT)


def exit_code_for(error: OpenedxAPIError) -> ExitCode:
    """The exit code of a request that failed."""
    if error.status_code is None:
        return ExitCode.UNREACHABLE
    if isinstance(error, OpenedxAuthError) or error.status_code in (400, 401, 403, 404, 429):
        return ExitCode.USAGE
    return ExitCode.FAILED


class CommandFailed(click.ClickException):
    """An API error, reported with its exit code (see ``exit_code_for``)."""

    def __init__(self, error: OpenedxAPIError, as_json: bool, hint: str = "") -> None:
        if error.status_code == 429 and not hint:
            wait = f"Try again in {error.retry_after or 'a few'} seconds"
            if isinstance(error, OpenedxAuthError):  # the token endpoint holds failed sign-ins
                hint = f"{wait}, and check the client secret (and password): failed sign-ins are held."
            else:
                hint = f"{wait}, or cancel one of your processes."
        super().__init__(for_cli(str(error)) + (f"\n{hint}" if hint else ""))
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
            print_records(
                Console(stderr=True),
                "Refused; nothing was uploaded",
                ("Row", "Column", "Problem"),
                [(e.get("row") or "-", e.get("column"), e.get("message")) for e in errors],
            )


# The API's words for its request fields, and the CLI's flags for them: a person reads the flag.
_CLI_WORDS = (("set overwrite", "use --overwrite"), ("or use async", "or use --async"))


def for_cli(text: str) -> str:
    """A server message as the CLI shows it: request fields named by their flags (JSON keeps
    the API's own text)."""
    for api_words, cli_words in _CLI_WORDS:
        text = text.replace(api_words, cli_words)
    return text


def _text(cell: Any) -> Text:
    """Server data as text (a ``[`` in a course name is not markup)."""
    return cell if isinstance(cell, Text) else Text("" if cell is None else for_cli(str(cell)))


def print_records(
    console: Console,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    copyable: Sequence[str] = (),
) -> None:
    """
    Rows as a table, or as records of one line per field.

    The cells of the ``copyable`` columns (ids, keys, URLs: what people copy) never wrap: the
    table gives them their full width, and when it cannot (a narrow terminal) or the output is
    not a terminal, each row is printed as its first cell on a line of its own, then one
    indented ``Header: value`` line per other cell.
    """
    widths = [
        max((len(_text(row[index]).plain) for row in rows), default=0) if header in copyable else None
        for index, header in enumerate(headers)
    ]
    # Each column takes its padding and a border; a column that may wrap still needs some room.
    needed = sum(w if w is not None else max(len(h), 8) for w, h in zip(widths, headers, strict=True))
    if console.is_terminal and needed + 3 * len(headers) + 1 <= console.width:
        table = Table(title=title)
        for header, width in zip(headers, widths, strict=True):
            table.add_column(header, no_wrap=width is not None, min_width=width, overflow="fold")
        for row in rows:
            table.add_row(*(_text(cell) for cell in row))
        console.print(table)
        return
    console.print(Text(title, style="bold"), soft_wrap=True)
    for row in rows:
        console.print(_text(row[0]), soft_wrap=True)
        for header, cell in zip(headers[1:], row[1:], strict=True):
            if cell not in (None, ""):
                console.print(Text.assemble(f"  {header}: ", _text(cell)), soft_wrap=True)


def print_fields(console: Console, title: str, fields: Sequence[tuple[str, Any]]) -> None:
    """Named values (a process's status): a table on a terminal, else one ``name: value`` line each."""
    if console.is_terminal:
        print_records(console, title, ("Field", "Value"), fields, copyable=("Value",))
        return
    console.print(Text(title, style="bold"), soft_wrap=True)
    for name, value in fields:
        console.print(Text.assemble(f"{name}: ", _text(value)), soft_wrap=True)


def follow(console: Console, statuses: Iterator[dict[str, Any]], label: str, show: bool) -> dict[str, Any]:
    """Read a process's statuses to the last one, drawing its progress when ``show``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=console) if show else None
    result: dict[str, Any] = {}
    with progress or contextlib.nullcontext():
        task = progress.add_task(label, total=None) if progress else None
        for result in statuses:
            if progress and task is not None:
                progress.update(
                    task,
                    total=result.get("totalCount") or None,
                    completed=(result.get("successCount") or 0) + (result.get("failedCount") or 0),
                    description=f"{label} {result.get('status')}",
                )
    return result


def row_errors(body: Any) -> list[dict[str, Any]]:
    """The per-row problems a refused bulk upload lists in ``result.errors``."""
    result = body.get("result") if isinstance(body, dict) else None
    errors = result.get("errors") if isinstance(result, dict) else None
    return errors if isinstance(errors, list) else []


def print_exports(console: Console, answer: dict[str, Any]) -> None:
    """Each exported course with its URL, each refused one with the reason."""
    rows = [
        (course_id, Text(url, "green")) for course_id, url in (answer.get("successful_uploads") or {}).items()
    ]
    rows += [
        (course_id, Text(reason, "red")) for course_id, reason in (answer.get("failed_uploads") or {}).items()
    ]
    print_records(console, "Exports", ("Course", "Result"), rows, copyable=("Course", "Result"))
