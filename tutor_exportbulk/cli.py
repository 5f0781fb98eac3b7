"""
The command line: one set of commands, two ways in.

- ``tutor exportbulk ...`` (``tutor_group``): hosts and OAuth2 credentials come from the Tutor
  configuration of the current project root.
- ``exportbulk ...`` (``main``): they come from options, environment variables or a small
  config file.

Exit codes: 0 all went well; 1 something failed (a course, a row, a process, a request);
2 usage or authentication error.
"""

from __future__ import annotations

import configparser
import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tutor_exportbulk.client import OpenedxAPIError, OpenedxAuthError, OpenedxRESTAPIClient

CLIENT_ID_SETTING = "EXPORTBULK_OAUTH2_CLIENT_ID"
CLIENT_SECRET_SETTING = "EXPORTBULK_OAUTH2_CLIENT_SECRET"
CONFIG_KEYS = ("lms_url", "studio_url", "client_id", "client_secret", "username", "password", "token_type")
KINDS = ("export", "upload")


@dataclass
class Runtime:
    """What every command needs: a client (made on first use) and the output format."""

    make_client: Callable[[], OpenedxRESTAPIClient]
    as_json: bool = False
    console: Console = field(default_factory=Console)
    _client: OpenedxRESTAPIClient | None = None

    @property
    def client(self) -> OpenedxRESTAPIClient:
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        """JSON on stdout for scripts, or the human rendering."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            render(self.console)


class CommandFailed(click.ClickException):
    """An API error, reported with its exit code (2 for authentication and permission)."""

    def __init__(self, error: OpenedxAPIError, as_json: bool) -> None:
        super().__init__(str(error))
        self.error, self.as_json = error, as_json
        self.exit_code = exit_code_for(error)

    def show(self, file=None) -> None:
        if self.as_json:
            error = self.error
            details = {"status_code": error.status_code, "url": error.url, "message": error.message}
            click.echo(json.dumps({"error": {**details, "body": error.body}}, indent=2))
        super().show(file)
        row_errors = _row_errors(self.error.body)
        if row_errors and not self.as_json:
            Console(stderr=True).print(_row_error_table(row_errors))


def exit_code_for(error: OpenedxAPIError) -> int:
    """2 when the credentials or permissions are wrong, 1 for any other failure."""
    return 2 if isinstance(error, OpenedxAuthError) or error.status_code in (401, 403) else 1


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


def _row_errors(body: Any) -> list[dict]:
    """The per-row problems a refused bulk upload lists in ``result.errors``."""
    result = body.get("result") if isinstance(body, dict) else None
    errors = result.get("errors") if isinstance(result, dict) else None
    return errors if isinstance(errors, list) else []


def _row_error_table(errors: list[dict]) -> Table:
    table = new_table("Row", "Column", "Problem", title="Refused; nothing was uploaded")
    for error in errors:
        add_row(table, error.get("row") or "-", error.get("column"), error.get("message"))
    return table


# Commands, shared by both groups ------------------------------------------------------------

COMMANDS: list[click.Command] = []


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_object(Runtime).as_json = True


json_option = click.option(
    "--json", "as_json", is_flag=True, expose_value=False, callback=_set_json, help="Print JSON, for scripts."
)


def api_command(name: str) -> Callable[[Callable[..., int | None]], click.Command]:
    """A command of both groups: gets the Runtime, turns API errors into messages and exit codes."""

    def decorate(function: Callable[..., int | None]) -> click.Command:
        @functools.wraps(function)
        @click.pass_context
        def run(ctx: click.Context, *args: Any, **kwargs: Any) -> None:
            runtime = ctx.find_object(Runtime)
            try:
                code = function(runtime, *args, **kwargs)
            except OpenedxAPIError as error:
                raise CommandFailed(error, runtime.as_json) from error
            ctx.exit(code or 0)

        command = click.command(name)(json_option(run))
        COMMANDS.append(command)
        return command

    return decorate


@api_command("check")
def check(runtime: Runtime) -> int:
    """Check that the credentials get a token and that the LMS and Studio APIs answer."""
    client = runtime.client
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"token from {client.base_url}", client.access_token),
        ("LMS course list", lambda: next(client.iter_courses(page_size=1), None)),
        ("Studio export status", client.export_status_list),
        ("Studio upload status", client.upload_status_list),
    ]
    checks, code = [], 0
    for name, step in steps:
        try:
            step()
        except OpenedxAPIError as error:
            checks.append({"check": name, "ok": False, "message": str(error)})
            code = max(code, exit_code_for(error))
            if isinstance(error, OpenedxAuthError):
                break  # without a token, every other check would fail the same way
        else:
            checks.append({"check": name, "ok": True, "message": ""})

    def render(console: Console) -> None:
        for item in checks:
            mark = Text("ok    ", "green") if item["ok"] else Text("FAILED", "red")
            console.print(
                Text.assemble(mark, "  ", item["check"], f"  {item['message']}" if item["message"] else "")
            )

    runtime.emit({"checks": checks}, render)
    return code


@api_command("courses")
@click.option("--org", help="Only the courses of this organization.")
def courses(runtime: Runtime, org: str | None) -> None:
    """List the courses the service user can see in the LMS."""
    found = runtime.client.list_all_courses(org=org)

    def render(console: Console) -> None:
        table = new_table("Course id", "Name", "Start", "Pacing", title=f"{len(found)} course(s)")
        for course in found:
            add_row(table, course.get("id"), course.get("name"), course.get("start"), course.get("pacing"))
        console.print(table)

    runtime.emit(found, render)


def _change_enrollment(
    runtime: Runtime, action: str, emails: tuple[str, ...], course_ids: tuple[str, ...], **options: Any
) -> int:
    answer = runtime.client.change_enrollment(list(emails), list(course_ids), action=action, **options)
    rows = [
        (course_id, result)
        for course_id, outcome in answer.get("courses", {}).items()
        for result in outcome.get("results", [])
    ]
    failed = any(result.get("error") or result.get("invalidIdentifier") for _, result in rows)

    def render(console: Console) -> None:
        table = new_table("Course", "Learner", "Before", "After", title=f"{action}: {len(rows)} change(s)")
        for course_id, result in rows:
            if result.get("invalidIdentifier"):
                add_row(table, course_id, result.get("identifier"), "", Text("invalid identifier", "red"))
            elif result.get("error"):
                message = result.get("error_message") or "error"
                add_row(table, course_id, result.get("identifier"), "", Text(message, "red"))
            else:
                add_row(
                    table,
                    course_id,
                    result.get("identifier"),
                    _state(result["before"]),
                    _state(result["after"]),
                )
        console.print(table)

    runtime.emit(answer, render)
    return 1 if failed else 0


def _state(state: dict) -> str:
    """One enrollment state of the instructor API in words."""
    if state.get("enrollment"):
        words = "enrolled"
    elif state.get("allowed"):
        words = "allowed, auto-enroll" if state.get("auto_enroll") else "allowed"
    else:
        words = "not enrolled"
    return f"{words}, cohort {state['cohort']}" if state.get("cohort") else words


emails_option = click.option(
    "--email", "emails", multiple=True, required=True, help="A learner's email or username (repeat)."
)
courses_option = click.option(
    "--course", "course_ids", multiple=True, required=True, help="A course id (repeat)."
)
notify_option = click.option(
    "--email-students/--no-email-students",
    default=True,
    show_default=True,
    help="Tell the learners by email.",
)


@api_command("enroll")
@emails_option
@courses_option
@click.option("--cohort", "cohorts", multiple=True, help="A cohort per course, in the order of --course.")
@click.option(
    "--auto-enroll/--no-auto-enroll",
    default=True,
    show_default=True,
    help="Enroll unregistered emails on sign-up.",
)
@notify_option
def enroll(
    runtime: Runtime,
    emails: tuple[str, ...],
    course_ids: tuple[str, ...],
    cohorts: tuple[str, ...],
    auto_enroll: bool,
    email_students: bool,
) -> int:
    """Enroll learners in courses (the LMS bulk enrollment API; needs global staff)."""
    return _change_enrollment(
        runtime,
        "enroll",
        emails,
        course_ids,
        cohorts=list(cohorts) or None,
        auto_enroll=auto_enroll,
        email_students=email_students,
    )


@api_command("unenroll")
@emails_option
@courses_option
@notify_option
def unenroll(
    runtime: Runtime, emails: tuple[str, ...], course_ids: tuple[str, ...], email_students: bool
) -> int:
    """Unenroll learners from courses."""
    return _change_enrollment(runtime, "unenroll", emails, course_ids, email_students=email_students)


def _follow(runtime: Runtime, process_id: str, kind: str, interval: float) -> dict:
    """Poll a process to its end, with a progress bar for humans."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = None if runtime.as_json else Progress(*columns, console=runtime.console)
    with progress or contextlib.nullcontext():
        task = progress.add_task(f"{kind} {process_id}", total=None) if progress else None
        for result in runtime.client.wait(process_id, kind=kind, interval=interval):
            if progress:
                progress.update(
                    task,
                    total=result.get("totalCount") or None,
                    completed=(result.get("successCount") or 0) + (result.get("failedCount") or 0),
                    description=f"{kind} {process_id} {result.get('status')}",
                )
    return result


def _report(runtime: Runtime, kind: str, result: dict) -> int:
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
            _print_exports(console, result)

    runtime.emit(result, render)
    return 1 if result.get("status") == "Failed" or (result.get("failedCount") or 0) > 0 else 0


def _print_exports(console: Console, answer: dict) -> None:
    table = new_table("Course", "Result")
    for course_id, url in (answer.get("successful_uploads") or {}).items():
        add_row(table, course_id, Text(url, "green"))
    for course_id, reason in (answer.get("failed_uploads") or {}).items():
        add_row(table, course_id, Text(reason, "red"))
    console.print(table)


interval_option = click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between polls.",
)


@api_command("export")
@click.argument("course_ids", nargs=-1)
@click.option("--org", help="Every course of this organization the service user may author.")
@click.option("--all", "all_courses", is_flag=True, help="Every course the service user may author.")
@click.option("--async", "run_async", is_flag=True, help="Queue the export and print its process id.")
@click.option("--wait", is_flag=True, help="Queue the export and follow it to the end (implies --async).")
@interval_option
def export(
    runtime: Runtime,
    course_ids: tuple[str, ...],
    org: str | None,
    all_courses: bool,
    run_async: bool,
    wait: bool,
    interval: float,
) -> int:
    """Export courses to the bucket as OLX .tar.gz files: COURSE_ID..., --org ORG or --all."""
    if sum((bool(course_ids), org is not None, all_courses)) != 1:
        raise click.UsageError("Give course ids, --org ORG or --all (one of them).")
    answer = runtime.client.export_courses(
        list(course_ids) or None, org=org, all=all_courses, async_=run_async or wait
    )
    if "processId" not in answer:
        runtime.emit(answer, lambda console: _print_exports(console, answer))
        return 1 if answer.get("failed_uploads") else 0
    if wait:
        return _report(runtime, "export", _follow(runtime, answer["processId"], "export", interval))
    runtime.emit(answer, lambda console: console.print(f"export queued: {answer['processId']}"))
    return 0


@api_command("upload")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--content",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The ZIP of the files the manifest names.",
)
@click.option(
    "--mode",
    type=click.Choice(["upload", "publish", "link"]),
    default="upload",
    show_default=True,
    help="upload: locked assets; publish: public assets; link: and a component in each row's unit.",
)
@click.option("--wait", is_flag=True, help="Follow the upload to the end.")
@interval_option
def upload(runtime: Runtime, manifest: Path, content: Path, mode: str, wait: bool, interval: float) -> int:
    """Upload content into courses from a CSV MANIFEST and a ZIP."""
    answer = runtime.client.bulk_upload(manifest, content, mode=mode)
    if wait:
        return _report(runtime, "upload", _follow(runtime, answer["processId"], "upload", interval))
    runtime.emit(answer, lambda console: console.print(f"upload queued: {answer['processId']}"))
    return 0


kind_option = click.option("--kind", type=click.Choice(KINDS), help="export or upload (default: both).")


@api_command("status")
@click.argument("process_id")
@kind_option
def status(runtime: Runtime, process_id: str, kind: str | None) -> int:
    """Show the status of an export or upload process."""
    client = runtime.client
    if kind is None:  # an id is either kind's: ask for an export first, then for an upload
        try:
            return _report(runtime, "export", client.export_status(process_id))
        except OpenedxAPIError as error:
            if error.status_code != 404:
                raise
        kind = "upload"
    reader = client.export_status if kind == "export" else client.upload_status
    return _report(runtime, kind, reader(process_id))


@api_command("list")
@kind_option
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1), help="Page, newest first.")
def list_processes(runtime: Runtime, kind: str | None, page: int) -> None:
    """List your export and upload processes, newest first."""
    client = runtime.client
    readers = {"export": client.export_status_list, "upload": client.upload_status_list}
    pages = {name: readers[name](page) for name in ([kind] if kind else KINDS)}

    def render(console: Console) -> None:
        table = new_table("Kind", "Process id", "Started", "Status")
        for name, result in pages.items():
            for item in result.get("uploads", []):
                add_row(table, name, item.get("processId"), item.get("uploadedDate"), item.get("status"))
        console.print(table)

    runtime.emit(pages, render)


# The two ways in ----------------------------------------------------------------------------


def client_from_tutor(root: str) -> OpenedxRESTAPIClient:
    """A client of this Tutor project's LMS and Studio, with the plugin's OAuth2 application."""
    from tutor import config as tutor_config
    from tutor.exceptions import TutorError

    try:
        config = tutor_config.load(root)
    except TutorError as error:
        raise click.UsageError(str(error)) from error
    if not (config.get(CLIENT_ID_SETTING) and config.get(CLIENT_SECRET_SETTING)):
        raise click.UsageError(
            f"{CLIENT_ID_SETTING} and {CLIENT_SECRET_SETTING} are not set: "
            "run `tutor plugins enable exportbulk` and `tutor config save`."
        )
    scheme = "https" if config.get("ENABLE_HTTPS") else "http"
    return OpenedxRESTAPIClient(
        f"{scheme}://{config['LMS_HOST']}",
        str(config[CLIENT_ID_SETTING]),
        str(config[CLIENT_SECRET_SETTING]),
        studio_url=f"{scheme}://{config['CMS_HOST']}",
    )


@click.group(name="exportbulk")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.pass_context
def tutor_group(ctx: click.Context, as_json: bool) -> None:
    """Bulk course export and bulk content upload of this Open edX platform."""
    root = ctx.obj.root  # Tutor's own Context
    ctx.obj = Runtime(lambda: client_from_tutor(root), as_json)


def read_config_file(path: Path) -> dict[str, str]:
    """The settings of a JSON file, or of the ``[exportbulk]`` section of an INI file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise click.BadParameter(f"{path}: {error}", param_hint="--config") from error
    else:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as error:
            raise click.BadParameter(str(error), param_hint="--config") from error
        if not parser.has_section("exportbulk"):
            raise click.BadParameter(f"{path} has no [exportbulk] section.", param_hint="--config")
        values = dict(parser["exportbulk"])
    if not isinstance(values, dict):
        raise click.BadParameter(f"{path} holds no JSON object.", param_hint="--config")
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise click.BadParameter(
            f"{path}: unknown keys {', '.join(unknown)}; known: {', '.join(CONFIG_KEYS)}.",
            param_hint="--config",
        )
    return {key: str(value) for key, value in values.items() if value is not None}


def client_from_settings(settings: dict[str, str | None]) -> OpenedxRESTAPIClient:
    missing = [
        f"--{key.replace('_', '-')}" for key in ("lms_url", "client_id", "client_secret") if not settings[key]
    ]
    if missing:
        raise click.UsageError(
            f"Missing {', '.join(missing)} (options, EXPORTBULK_* environment variables or --config)."
        )
    return OpenedxRESTAPIClient(
        settings["lms_url"],
        settings["client_id"],
        settings["client_secret"],
        studio_url=settings["studio_url"],
        username=settings["username"],
        password=settings["password"],
        token_type=settings["token_type"] or "jwt",
    )


@click.group(name="exportbulk")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="EXPORTBULK_CONFIG",
    help="A JSON file, or an INI file with an [exportbulk] section, of the settings below.",
)
@click.option("--lms-url", envvar="EXPORTBULK_LMS_URL", help="The LMS, e.g. https://lms.example.com.")
@click.option("--studio-url", envvar="EXPORTBULK_STUDIO_URL", help="Studio (default: the LMS URL).")
@click.option("--client-id", envvar="EXPORTBULK_CLIENT_ID", help="OAuth2 client id.")
@click.option(
    "--client-secret", envvar="EXPORTBULK_CLIENT_SECRET", help="OAuth2 client secret (prefer the variable)."
)
@click.option("--username", envvar="EXPORTBULK_USERNAME", help="For the password grant.")
@click.option(
    "--password", envvar="EXPORTBULK_PASSWORD", help="For the password grant (prefer the variable)."
)
@click.option("--token-type", type=click.Choice(["jwt", "bearer"]), envvar="EXPORTBULK_TOKEN_TYPE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.pass_context
def standalone_cli(
    ctx: click.Context, config_file: Path | None, as_json: bool, **options: str | None
) -> None:
    """Bulk course export and bulk content upload of an Open edX platform (or the standalone server).

    Each setting is taken from its option, else its EXPORTBULK_* variable, else --config.
    """
    from_file = read_config_file(config_file) if config_file else {}
    settings = {key: options.get(key) or from_file.get(key) for key in CONFIG_KEYS}
    ctx.obj = Runtime(lambda: client_from_settings(settings), as_json)


for _command in COMMANDS:
    tutor_group.add_command(_command)
    standalone_cli.add_command(_command)


def main() -> None:
    """The ``exportbulk`` program."""
    standalone_cli(prog_name="exportbulk")
