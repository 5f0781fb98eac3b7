"""Starting the standalone project's server and workers as child processes (demo, tests, bench)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    """Return once something listens on the loopback port; fail if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the process exited with status {process.returncode} before listening on {port}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f} s")


def standalone(*args: str, **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``exportbulk-standalone ARGS...`` as a child process of this Python."""
    return subprocess.Popen([sys.executable, "-m", "plugin_app.standalone", *args], **popen_kwargs)
