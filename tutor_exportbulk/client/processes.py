"""
What every kind of process shares: status, the list of one's processes, and waiting for the end.

Each kind's mixin registers the path of its status API with ``register_kind``; this module then
serves that kind too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
import urllib3

from tutor_exportbulk.client.errors import OpenedxAPIError, error_of, no_answer
from tutor_exportbulk.client.transport import Transport

# Any process, whatever its kind: the answer names the kind.
PROCESS_PATH = "/api/courses/v0/processes/"
STORAGE_CHECK_PATH = "/api/courses/v0/storage/check"
FINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})
# kind -> Studio path of its status API; "<path><processId>" and "<path>list" answer.
STATUS_PATHS: dict[str, str] = {}


def course_selection(course_ids: Iterable[str] | None, org: str | None, all: bool) -> dict[str, Any]:
    """The request body naming the courses of an export or backup: a list, an organization or all."""
    body: dict[str, Any] = {}
    if course_ids is not None:
        body["courses"] = list(course_ids)
    if org is not None:
        body["org"] = org
    if all:
        body["all"] = True
    return body


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

    def process(self, process_id: str) -> dict[str, Any]:
        """
        Get the status of one process of the caller, whatever its kind.
        Calls the ``/api/courses/v0/processes/{processId}`` Studio endpoint.

        Returns:
            what ``process_status`` answers, with ``kind`` (``"export"``, ``"upload"``, ...).
        """
        return self._result(self._send("GET", self.studio_url + PROCESS_PATH + quote(process_id)))

    def storage_check(self) -> dict[str, Any]:
        """
        Have the server write, read back and delete a small object in its storage.
        Calls the ``/api/courses/v0/storage/check`` Studio endpoint.

        Returns:
            dict with ``storage`` (``"bucket NAME"`` or ``"folder PATH"``). Raises
            ``OpenedxAPIError`` (503) naming the bucket when it is missing or refuses the write.
        """
        return dict(self._get(self.studio_url + STORAGE_CHECK_PATH))

    def cancel(self, process_id: str, kind: str | None = None) -> dict[str, Any]:
        """
        Cancel one of the caller's processes: its items not started are canceled, the running
        ones finish (a half-written export is dropped). Calls
        ``POST .../status/{processId}/cancel`` of the process's kind (looked up when None).

        Returns:
            the process's status result (see ``process_status``): ``Canceled`` once its running
            items have finished, until then still ``Processing``; a process that had ended
            already is answered as it is.

        Raises:
            OpenedxAPIError: 404 for an unknown process or another user's.
        """
        kind = kind or self.process(process_id)["kind"]
        url = self._status_path(kind) + quote(process_id) + "/cancel"
        return self._result(self._send("POST", url), ok=(200, 202))

    def process_list(self, kind: str, page: int = 1) -> dict[str, Any]:
        """
        List the caller's processes of ``kind``, newest first, one page.

        Returns:
            ``{"userId", "count", "next", "previous", <list key>: [{"processId", "uploadedDate", "status"}]}``
        """
        return self._result(self._send("GET", self._status_path(kind) + "list", params={"page": page}))

    def wait(
        self,
        process_id: str,
        kind: str | None = "upload",
        interval: float = 1.0,
        timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Poll a process until it is Completed, Failed or Canceled.

        Args:
            process_id: what ``bulk_upload`` or ``export_courses(async_=True)`` answered.
            kind: ``"upload"``, ``"export"`` or another registered kind; None for any kind.
            interval: seconds between two polls.
            timeout: give up (``TimeoutError``) after this many seconds; None waits for ever.

        Returns:
            An iterator of status results (see ``process_status``); the last one is final.
        """
        if kind is not None:
            self._status_path(kind)  # an unknown kind fails now, not at the first poll
        return self._poll(kind, process_id, interval, timeout)

    def _poll(
        self, kind: str | None, process_id: str, interval: float, timeout: float | None
    ) -> Iterator[dict[str, Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = self.process(process_id) if kind is None else self.process_status(kind, process_id)
            yield result
            if result.get("status") in FINAL_STATUSES:
                return
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"Process {process_id} still {result.get('status')} after {timeout} s.")
            time.sleep(interval)

    def download(self, url: str, directory: Path) -> Path:
        """
        Download one file of a process (an exported course, a report) into ``directory``.

        The URL is a signed one (S3 presigned, or this app's own signed link): it is fetched
        without the access token, which must never go to the bucket's host. The file is written
        under a temporary name and kept only when its size is the announced ``Content-Length``.

        Returns:
            The path of the file, named as the server names it.

        Raises:
            OpenedxAPIError: the download failed or was cut short; nothing is left behind.
        """
        try:
            with requests.get(url, stream=True, timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise error_of(response)
                target = directory / _file_name(response)
                partial = target.with_name(target.name + ".part")
                try:
                    size = 0
                    with partial.open("wb") as out:
                        # The bytes as sent, so that they add up to the Content-Length.
                        for chunk in response.raw.stream(1 << 20, decode_content=False):
                            size += out.write(chunk)
                    expected = response.headers.get("Content-Length")
                    if expected is not None and int(expected) != size:
                        raise OpenedxAPIError(200, url, f"Got {size} of {expected} bytes; nothing was kept.")
                    partial.replace(target)
                finally:
                    partial.unlink(missing_ok=True)
                return target
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise OpenedxAPIError(None, url, no_answer(exc)) from exc


def _file_name(response: requests.Response) -> str:
    """The name the server gives the file (Content-Disposition, else the URL's last segment),
    reduced to one safe path segment."""
    match = re.search(r'filename="?([^";]+)"?', response.headers.get("Content-Disposition", ""))
    name = match.group(1) if match else unquote(urlsplit(response.url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^\w.+-]", "_", name.rsplit("/", 1)[-1]).lstrip(".")
    return name or "download"
