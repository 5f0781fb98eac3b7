"""This plugin's bulk upload API (Studio): files into courses from a CSV manifest and a ZIP."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import IO, Any

from requests_toolbelt import MultipartEncoder  # type: ignore[import-untyped]

from tutor_exportbulk.client.processes import ProcessesMixin, register_kind

UPLOAD_PATH = "/api/courses/v0/content/bulk/upload"
UPLOAD_STATUS_PATH = "/api/courses/v0/content/bulk/upload/status/"

register_kind("upload", UPLOAD_STATUS_PATH)

FileInput = str | os.PathLike[str] | IO[bytes]


class UploadsMixin(ProcessesMixin):
    """Start bulk uploads and read their status."""

    def bulk_upload(
        self, manifest: FileInput, content: FileInput | None = None, mode: str = "upload"
    ) -> dict[str, Any]:
        """
        Upload files into courses from a CSV manifest and a ZIP of the files it names.
        Calls the ``/api/courses/v0/content/bulk/upload`` Studio endpoint.

        The body is streamed from the files (requests-toolbelt's ``MultipartEncoder``): a large
        ZIP is never held in memory whole. File objects are sent from their beginning.

        Args:
            manifest: the CSV manifest, a path or a binary file object.
            content: the ZIP, a path or a binary file object.
            mode: ``"upload"`` (locked assets), ``"publish"`` (public assets) or ``"link"``
                (published, and a component made for each file in its unit).

        Returns:
            ``{"processId": ...}``; follow it with ``upload_status`` or ``wait``.

        Raises:
            OpenedxAPIError: the request was refused; ``error.body["result"]["errors"]`` lists
                every problem (``{"row", "column", "message"}``), and nothing was stored.
        """
        with contextlib.ExitStack() as stack:
            fields = {"file": (*_open(manifest, stack, "manifest.csv"), "text/csv")}
            if content is not None:
                fields["content"] = (*_open(content, stack, "content.zip"), "application/zip")

            boundary = uuid.uuid4().hex

            def body() -> MultipartEncoder:
                """A new encoder per attempt (a 401 makes the client send the body again), same bytes."""
                for _name, fileobj, _type in fields.values():
                    fileobj.seek(0)
                return MultipartEncoder(fields, boundary=boundary)

            url = self.studio_url + UPLOAD_PATH
            return self._result(self._send("POST", url, body=body, headers={"operation-mode": mode}))

    def upload_status(self, process_id: str) -> dict[str, Any]:
        """
        Get the status of one bulk upload.
        Calls the ``/api/courses/v0/content/bulk/upload/status/{processId}`` Studio endpoint.

        Returns:
            dict with ``processId``, ``status`` (Queued, Processing, Completed, Failed),
            ``totalCount``, ``successCount``, ``failedCount``, ``startTime``; once finished also
            ``endTime`` and ``report`` (URL of a CSV with every row's outcome).
        """
        return self.process_status("upload", process_id)

    def upload_status_list(self, page: int = 1) -> dict[str, Any]:
        """
        List the caller's bulk uploads, newest first, one page.
        Calls the ``/api/courses/v0/content/bulk/upload/status/list`` Studio endpoint.

        Returns:
            ``{"userId", "count", "next", "previous", "uploads": [{"processId", "uploadedDate", "status"}]}``
        """
        return self.process_list("upload", page)


def _open(source: FileInput, stack: contextlib.ExitStack, default_name: str) -> tuple[str, IO[bytes]]:
    """A (file name, binary file) pair; paths are opened here and closed with the stack."""
    if isinstance(source, str | os.PathLike):
        return Path(source).name, stack.enter_context(open(source, "rb"))
    return Path(getattr(source, "name", "") or default_name).name, source
