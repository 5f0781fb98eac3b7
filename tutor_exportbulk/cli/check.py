"""`check`: whether the credentials get a token and the APIs answer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.output import ExitCode, exit_code_for
from tutor_exportbulk.cli.processes import KINDS
from tutor_exportbulk.cli.runtime import Runtime, api_command
from tutor_exportbulk.client import OpenedxAPIError, OpenedxAuthError


@api_command("check")
def check(runtime: Runtime) -> int:
    """Check that the credentials get a token and that the LMS and Studio APIs answer."""
    client = runtime.client
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"token from {client.base_url}", client.access_token),
        ("LMS course list", lambda: next(client.iter_courses(page_size=1), None)),
        *((f"Studio {kind} status", functools.partial(client.process_list, kind)) for kind in KINDS),
        ("storage (write, read, delete)", client.storage_check),
    ]
    checks: list[dict[str, Any]] = []
    code = ExitCode.OK
    for name, step in steps:
        try:
            step()
        except OpenedxAPIError as error:
            code = max(code, exit_code_for(error))
            if error.status_code is None:  # said once: every other check would fail the same way
                message = f"Cannot connect to {error.url}. {runtime.start_hint}"
                checks.append({"check": name, "ok": False, "message": message})
                break
            checks.append({"check": name, "ok": False, "message": str(error)})
            if isinstance(error, OpenedxAuthError):
                break  # without a token, every other check would fail the same way
        else:
            checks.append({"check": name, "ok": True, "message": ""})

    def render(console: Console) -> None:
        for item in checks:
            mark = Text("ok    ", "green") if item["ok"] else Text("FAILED", "red")
            message = f"  {item['message']}" if item["message"] else ""
            console.print(Text.assemble(mark, "  ", str(item["check"]), message), soft_wrap=True)

    runtime.emit({"checks": checks}, render)
    return code
