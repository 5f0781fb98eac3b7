"""
The command line: one set of commands, two ways in.

- ``tutor exportbulk ...`` (``tutor_group``): hosts and OAuth2 credentials come from the Tutor
  configuration of the current project root.
- ``exportbulk ...`` (``main``): they come from options, environment variables or a small
  config file.

Each command family is a module that registers its commands with ``runtime.api_command``; both
groups below add every registered command. A new family is a new module imported here.

Exit codes: 0 all went well; 1 something failed (a course, a row, a process, a request);
2 usage or authentication error.
"""

from __future__ import annotations

from pathlib import Path

import click

from tutor_exportbulk.cli import check, courses, exports, processes, uploads  # noqa: F401  (registers)
from tutor_exportbulk.cli.config import CONFIG_KEYS, client_from_settings, client_from_tutor, read_config_file
from tutor_exportbulk.cli.runtime import COMMANDS, Runtime


@click.group(name="exportbulk")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.pass_context
def tutor_group(ctx: click.Context, /, as_json: bool) -> None:
    """Bulk course export and bulk content upload of this Open edX platform."""
    root = ctx.obj.root  # Tutor's own Context
    ctx.obj = Runtime(lambda: client_from_tutor(root), as_json)


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
    ctx: click.Context, /, config_file: Path | None, as_json: bool, **options: str | None
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
