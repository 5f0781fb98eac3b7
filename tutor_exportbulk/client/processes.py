"""
What every kind of process shares: status, the list of one's processes, and waiting for the end.

Each kind's mixin registers the path of its status API with ``register_kind``; this module then
serves that kind too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from tutor_exportbulk.client.transport import Transport

FINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})
# kind -> Studio path of its status API; "<path><processId>" and "<path>list" answer.
STATUS_PATHS: dict[str, str] = {}


def register_kind(kind: str, status_path: str) -> None:
    """Make a process kind known to ``process_status``, ``process_list`` and ``wait``."""
    STATUS_PATHS[kind] = status_path


class ProcessesMixin(Transport):
    """Status, lists and polling of the processes of any registered kind."""

    def _status_path(self, kind: str) -> str:
        if kind not in STATUS_PATHS:
            raise ValueError(f"kind must be one of {', '.join(sorted(STATUS_PATHS))}, not {kind!r}")
        return self.studio_url + STATUS_PATHS[kind]

    def process_status(self, kind: str, process_id: str) -> dict[str, Any]:
        """
        Get the status of one process of ``kind``.

        Returns:
            dict with ``processId``, ``status`` (Queued, Processing, Completed, Failed),
            ``totalCount``, ``successCount``, ``failedCount``, ``startTime``; once finished also
            ``endTime`` and ``report``, and what the kind adds.
        """
        return self._result(self._send("GET", self._status_path(kind) + quote(process_id)))

    def process_list(self, kind: str, page: int = 1) -> dict[str, Any]:
        """
        List the caller's processes of ``kind``, newest first, one page.

        Returns:
            ``{"userId", "count", "next", "previous", <list key>: [{"processId", "uploadedDate", "status"}]}``
        """
        return self._result(self._send("GET", self._status_path(kind) + "list", params={"page": page}))

    def wait(
        self, process_id: str, kind: str = "upload", interval: float = 1.0, timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        Poll a process until it is Completed, Failed or Canceled.

        Args:
            process_id: what ``bulk_upload`` or ``export_courses(async_=True)`` answered.
            kind: ``"upload"``, ``"export"`` or another registered kind.
            interval: seconds between two polls.
            timeout: give up (``TimeoutError``) after this many seconds; None waits for ever.

        Returns:
            An iterator of status results (see ``process_status``); the last one is final.
        """
        self._status_path(kind)  # an unknown kind fails now, not at the first poll
        return self._poll(kind, process_id, interval, timeout)

    def _poll(
        self, kind: str, process_id: str, interval: float, timeout: float | None
    ) -> Iterator[dict[str, Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = self.process_status(kind, process_id)
            yield result
            if result.get("status") in FINAL_STATUSES:
                return
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"Process {process_id} still {result.get('status')} after {timeout} s.")
            time.sleep(interval)
