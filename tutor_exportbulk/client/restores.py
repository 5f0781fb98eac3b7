"""This plugin's bulk restore API (Studio): course tarballs into courses, checked before anything changes."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from requests_toolbelt import MultipartEncoder  # type: ignore[import-untyped]

from tutor_exportbulk.client.processes import ProcessesMixin, register_kind
from tutor_exportbulk.client.uploads import FileInput, _open

RESTORE_PATH = "/api/courses/v0/restore/"
RESTORE_STATUS_PATH = "/api/courses/v0/restore/status/"

register_kind("restore", RESTORE_STATUS_PATH)


class RestoresMixin(ProcessesMixin):
    """Start bulk restores and read their status."""

    def restore(
        self,
        items: Iterable[Mapping[str, str]],
        files: Iterable[FileInput] = (),
        dry_run: bool = False,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        """
        Restore courses from course tarballs (``.tar.gz``, as the export and backup APIs write them).
        Calls the ``/api/courses/v0/restore/`` Studio endpoint.

        Args:
            items: ``{"source": ..., "course_id": ...}`` each: ``course_id`` is the target course;
                ``source`` an object key of the app's bucket (an export or a backup version),
                ``"backup:latest"`` / ``"backup:<timestamp>"`` (the target's own backups), or the
                file name of one of ``files``.
            files: tarballs to upload with the request (paths or binary file objects), streamed.
            dry_run: run every check and change nothing.
            overwrite: replace courses that exist (otherwise their items fail).

        Returns:
            ``{"processId": ...}``; follow it with ``restore_status`` or ``wait(kind="restore")``.

        Raises:
            OpenedxAPIError: the request could not start (400, 413); nothing was stored.
        """
        body_items = [dict(item) for item in items]
        options = {"dry_run": dry_run, "overwrite": overwrite}
        url = self.studio_url + RESTORE_PATH
        with contextlib.ExitStack() as stack:
            parts = [_open(file, stack, "course.tar.gz") for file in files]
            if not parts:
                answer: dict[str, Any] = self._answer(
                    self._send("POST", url, json={"items": body_items, **options}), ok=(202,)
                )
                return answer
            fields: list[tuple[str, Any]] = [
                ("items", json.dumps(body_items)),
                *((name, "true" if value else "false") for name, value in options.items()),
                *(("file", (name, stream, "application/gzip")) for name, stream in parts),
            ]
            boundary = uuid.uuid4().hex

            def body() -> MultipartEncoder:
                """A new encoder per attempt (a 401 makes the client send the body again), same bytes."""
                for _name, stream in parts:
                    stream.seek(0)
                return MultipartEncoder(fields, boundary=boundary)

            answer = self._answer(self._send("POST", url, body=body), ok=(202,))
            return answer

    def restore_status(self, process_id: str) -> dict[str, Any]:
        """
        Get the status of one restore process.
        Calls the ``/api/courses/v0/restore/status/{processId}`` Studio endpoint.

        Returns:
            dict with ``processId``, ``status``, the counts, ``startTime``/``endTime``, and
            ``items``: each ``{"course_id", "source", "status"`` (``restored``, ``would restore``,
            ``failed``, or pending while it runs), ``"reason", "findings"}`` (olxcleaner's).
        """
        return self.process_status("restore", process_id)

    def restore_status_list(self, page: int = 1) -> dict[str, Any]:
        """
        List the caller's restore processes, newest first, one page.
        Calls the ``/api/courses/v0/restore/status/list`` Studio endpoint.

        Returns:
            ``{"userId", "count", "next", "previous", "restores": [{"processId", "uploadedDate", "status"}]}``
        """
        return self.process_list("restore", page)
