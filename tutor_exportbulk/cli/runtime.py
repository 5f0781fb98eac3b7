"""What every command gets: the client (made on first use), the output format, and its registry."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.config import command_options
from tutor_exportbulk.cli.output import CommandFailed, ExitCode, follow
from tutor_exportbulk.client import OpenedxAPIError, OpenedxRESTAPIClient


@dataclass
class Runtime:
    """
    The state a command runs with; the group makes it, the commands read it.

    ``options`` are the connection options (given before or after the command); the client is
    made from them on first use. ``prog`` is how the user called us, for the hints we print.
    """

    make_client: Callable[[dict[str, Any]], OpenedxRESTAPIClient]
    options: dict[str, Any] = field(default_factory=dict)
    as_json: bool = False
    prog: str = "exportbulk"
    start_hint: str = "Is the server running at that address?"
    console: Console = field(default_factory=Console)
    _client: OpenedxRESTAPIClient | None = None

    @property
    def client(self) -> OpenedxRESTAPIClient:
        if self._client is None:
            self._client = self.make_client(self.options)
        return self._client

    def hint(self, text: str) -> None:
        """The next step, for a person (not in JSON); ``{prog}`` is how they called us."""
        if not self.as_json:
            self.console.print(Text(text.format(prog=self.prog), style="dim"), soft_wrap=True)

    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        """JSON on stdout for scripts, or the human rendering."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            render(self.console)

    def follow(self, process_id: str, kind: str | None, interval: float) -> dict[str, Any]:
        """Poll a process to its end, with a progress bar for humans; the final status.

        Ctrl-C asks whether to cancel the process (a person only). Yes cancels it and follows it
        to its end (Canceled: the command exits 1, as for any process that did not complete).
        No leaves it running and stops following it: exit 130 (``ExitCode.INTERRUPTED``).
        """
        kind_seen = [kind]

        def statuses() -> Iterator[dict[str, Any]]:
            for status in self.client.wait(process_id, kind=kind, interval=interval):
                kind_seen[0] = status.get("kind") or kind_seen[0]
                yield status

        label = f"{kind or 'process'} {process_id}"
        try:
            return follow(self.console, statuses(), label, show=not self.as_json)
        except KeyboardInterrupt:
            if self.as_json or not click.confirm(f"\nCancel {process_id}?", default=False, err=True):
                self.hint(f"{process_id} goes on; follow it with: {{prog}} status {process_id} --wait")
                raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None
        self.client.cancel(process_id, kind_seen[0])
        try:  # running items stop between parts: the end comes soon
            return follow(self.console, statuses(), f"canceling {label}", show=not self.as_json)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None


def runtime_of(ctx: click.Context) -> Runtime:
    runtime = ctx.find_object(Runtime)
    if runtime is None:
        raise click.UsageError("Run this command through `exportbulk` or `tutor exportbulk`.")
    return runtime


# Every command of this package; both groups (cli/__init__.py) add them all.
COMMANDS: list[click.Command] = []


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        runtime_of(ctx).as_json = True


def _set_option(ctx: click.Context, name: str, value: Any) -> None:
    runtime_of(ctx).options[name] = value


json_option = click.option(
    "--json", "as_json", is_flag=True, expose_value=False, callback=_set_json, help="Print JSON, for scripts."
)
interval_option = click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between polls.",
)


def api_command(name: str) -> Callable[[Callable[..., int | None]], click.Command]:
    """A command of both groups: gets the Runtime, turns API errors into messages and exit codes."""

    def decorate(function: Callable[..., int | None]) -> click.Command:
        @functools.wraps(function)
        @click.pass_context
        def run(ctx: click.Context, /, *args: Any, **kwargs: Any) -> None:
            runtime = runtime_of(ctx)
            try:
                code = function(runtime, *args, **kwargs)
            except OpenedxAPIError as error:
                hint = runtime.start_hint if error.status_code is None else ""
                raise CommandFailed(error, runtime.as_json, hint) from error
            ctx.exit(code or 0)

        command = click.command(name)(command_options(_set_option)(json_option(run)))
        COMMANDS.append(command)
        return command

    return decorate
