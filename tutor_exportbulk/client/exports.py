"""This plugin's bulk export API (Studio): courses to the bucket as OLX ``.tar.gz`` files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from tutor_exportbulk.client.errors import json_or_none
from tutor_exportbulk.client.processes import ProcessesMixin, course_selection, register_kind

EXPORT_PATH = "/api/courses/v0/export/"
EXPORT_STATUS_PATH = "/api/courses/v0/export/status/"
VERSIONS_PATH = "/api/courses/v0/export/versions/"

register_kind("export", EXPORT_STATUS_PATH)


class ExportsMixin(ProcessesMixin):
    """Start bulk exports and read their status."""

    def export_courses(
        self,
        course_ids: Iterable[str] | None = None,
        org: str | None = None,
        all: bool = False,
        async_: bool = False,
    ) -> dict[str, Any]:
        """
        Export courses to the bucket as OLX ``.tar.gz`` files.
        Calls the ``/api/courses/v0/export/`` Studio endpoint.

        Give exactly one of ``course_ids``, ``org`` or ``all``.

        Args:
            course_ids: the courses to export.
            org: every course of this organization the caller may author.
            all: every course the caller may author.
            async_: answer at once with a process id; the workers export.

        Returns:
            ``{"processId", "successful_uploads": {course_id: url}, "failed_uploads": {course_id:
            reason}}`` with the export anchor's ``upload_urls``, ``upload_task_ids`` and
            ``upload_keys`` (and ``pending_uploads``: courses still exporting when the server
            stopped waiting); a partial failure is returned too, not raised. With ``async_``:
            ``{"processId": ...}`` and the same task ids, keys and URLs.
        """
        body = course_selection(course_ids, org, all)
        if async_:
            body["async"] = True
        response = self._send("POST", self.studio_url + EXPORT_PATH, json=body)
        answer = json_or_none(response)
        if response.status_code == 400 and isinstance(answer, dict) and "failed_uploads" in answer:
            return answer
        exported: dict[str, Any] = self._answer(response, ok=(200, 202))
        return exported

    def export_status(self, process_id: str) -> dict[str, Any]:
        """
        Get the status of one export process.
        Calls the ``/api/courses/v0/export/status/{processId}`` Studio endpoint.

        Returns:
            dict with ``processId``, ``status`` (Queued, Processing, Completed, Failed),
            ``totalCount``, ``successCount``, ``failedCount``, ``startTime``; once finished also
            ``endTime``, ``report`` and ``successful_uploads`` / ``failed_uploads``.
        """
        return self.process_status("export", process_id)

    def export_status_list(self, page: int = 1) -> dict[str, Any]:
        """
        List the caller's export processes, newest first, one page.
        Calls the ``/api/courses/v0/export/status/list`` Studio endpoint.

        Returns:
            ``{"userId", "count", "next", "previous", "exports": [{"processId", "uploadedDate", "status"}]}``
        """
        return self.process_list("export", page)

    def export_task_state(self, course_id: str, task_id: str) -> dict[str, Any]:
        """
        Get the state of one course's export task (an id of ``upload_task_ids``).
        Calls the ``/api/courses/v0/export/{course_id}/?task_id={task_id}`` Studio endpoint.

        Returns:
            ``{"state": ...}`` (Pending, In Progress, Succeeded, Failed, Canceled, Retrying), with
            ``error`` when it failed, ``upload_url`` and ``upload_key`` once it succeeded.
        """
        url = f"{self.studio_url}{EXPORT_PATH}{quote(course_id, safe=':+')}/"
        state: dict[str, Any] = self._answer(self._send("GET", url, params={"task_id": task_id}))
        return state

    def content_versions(self, course_ids: Iterable[str]) -> dict[str, Any]:
        """
        What an export of each course would hold, to tell when a copy is stale (at most 200 ids).
        Calls the ``/api/courses/v0/export/versions/`` Studio endpoint.

        Returns:
            ``{"versions": {course_id: {"published_version", "static_assets", "transcripts"}},
            "missing": [ids that name no course the caller may export, in request order]}``
        """
        body = {"courses": list(course_ids)}
        versions: dict[str, Any] = self._answer(
            self._send("POST", self.studio_url + VERSIONS_PATH, json=body)
        )
        return versions
