"""
The command line: one set of commands, two ways in.

- ``tutor exportbulk ...`` (``tutor_group``): hosts and OAuth2 credentials come from the Tutor
  configuration of the current project root.
- ``exportbulk ...`` (``main``): they come from options, environment variables or a small
  config file.

Each command family is a module that registers its commands with ``runtime.api_command``; both
groups below add every registered command. A new family is a new module imported here.

Exit codes (``output.ExitCode``, documented in the README): 0 everything succeeded; 1 a course,
row or process failed (or was canceled); 2 usage, authentication or permission error, a refused
request (400), an unknown process or course (404); 3 the server could not be reached; 130 Ctrl-C
while waiting, the process left to go on.
"""

from __future__ import annotations

from typing import Any

import click

from tutor_exportbulk.cli import backups, check, courses, exports, processes, restores, uploads  # noqa: F401  (registers)
from tutor_exportbulk.cli.config import client_from_options, client_from_tutor, group_options
from tutor_exportbulk.cli.runtime import COMMANDS, Runtime

EPILOG = "Exit codes: 0 all succeeded; 1 a course, row or process failed or was canceled; 2 usage, \
credentials, permission, refused request, unknown process or course; 3 the server could not be \
reached; 130 Ctrl-C while waiting, the process left to go on."


@click.group(name="exportbulk")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.pass_context
def tutor_group(ctx: click.Context, /, as_json: bool) -> None:
    """Bulk course export, dated backups, bulk restore and bulk content upload of this Open edX platform."""
    root = ctx.obj.root  # Tutor's own Context
    ctx.obj = Runtime(
        lambda options: client_from_tutor(root, options),
        as_json=as_json,
        prog=ctx.command_path,
        start_hint="Is the platform running? Start it with `tutor local start` (or `tutor dev start`).",
    )


@click.group(name="exportbulk", epilog=EPILOG)
@group_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.pass_context
def standalone_cli(ctx: click.Context, /, as_json: bool, **options: Any) -> None:
    """Bulk course export, dated backups, bulk restore and bulk content upload of an Open edX
    platform (or the standalone server).

    Each setting is taken from its option, else its EXPORTBULK_* variable, else --config.
    The options may also follow the command: `exportbulk courses --lms-url URL`.
    """
    ctx.obj = Runtime(client_from_options, options=options, as_json=as_json, prog=ctx.command_path)


for _command in COMMANDS:
    tutor_group.add_command(_command)
    standalone_cli.add_command(_command)


def main() -> None:
    """The ``exportbulk`` program."""
    standalone_cli(prog_name="exportbulk")
