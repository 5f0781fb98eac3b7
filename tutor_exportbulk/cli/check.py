"""`check`: whether the credentials get a token and the APIs answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.output import exit_code_for
from tutor_exportbulk.cli.runtime import Runtime, api_command
from tutor_exportbulk.client import OpenedxAPIError, OpenedxAuthError


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
    checks: list[dict[str, Any]] = []
    code = 0
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
