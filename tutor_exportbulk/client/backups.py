"""This plugin's course backup API (Studio): dated, checksummed versions of changed courses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from tutor_exportbulk.client.processes import ProcessesMixin, course_selection, register_kind

BACKUP_PATH = "/api/courses/v0/backup/"
BACKUP_STATUS_PATH = "/api/courses/v0/backup/status/"
BACKUP_VERSIONS_PATH = "/api/courses/v0/backup/versions/"

register_kind("backup", BACKUP_STATUS_PATH)


class BackupsMixin(ProcessesMixin):
    """Start course backups, read their status and list a course's versions."""

    def backup_courses(
        self,
        course_ids: Iterable[str] | None = None,
        org: str | None = None,
        all: bool = False,
        changed_only: bool = True,
    ) -> dict[str, Any]:
        """
        Back up courses and v2 content libraries to the bucket, as dated versions.
        Calls the ``/api/courses/v0/backup/`` Studio endpoint.

        Give exactly one of ``course_ids``, ``org`` or ``all``.

        Args:
            course_ids: the courses (or library keys ``lib:ORG:SLUG``) to back up.
            org: every course and library of this organization the caller may author.
            all: every course and library the caller may author.
            changed_only: skip courses whose newest backup is still current (the default).

        Returns:
            ``{"processId": ...}``: the run is always asynchronous (see ``backup_status``).
        """
        body = {**course_selection(course_ids, org, all), "changed_only": changed_only}
        answer: dict[str, Any] = self._answer(
            self._send("POST", self.studio_url + BACKUP_PATH, json=body), ok=(202,)
        )
        return answer

    def backup_status(self, process_id: str) -> dict[str, Any]:
        """
        Get the status of one backup run.
        Calls the ``/api/courses/v0/backup/status/{processId}`` Studio endpoint.

        Returns:
            the process status (see ``process_status``) with ``items``: per course ``course_id``,
            ``status`` (``exported``, ``unchanged``, ``failed``), ``key``, ``size``, ``sha256``,
            ``url``, or ``reason``; once ended, ``manifest`` (the run manifest's URL).
        """
        return self.process_status("backup", process_id)

    def backup_status_list(self, page: int = 1) -> dict[str, Any]:
        """
        List the caller's backup runs, newest first, one page.
        Calls the ``/api/courses/v0/backup/status/list`` Studio endpoint.

        Returns:
            ``{"userId", "count", "next", "previous", "backups": [{"processId", "uploadedDate", "status"}]}``
        """
        return self.process_list("backup", page)

    def course_backups(self, course_id: str) -> list[dict[str, Any]]:
        """
        List the backup versions of one course, newest first.
        Calls the ``/api/courses/v0/backup/versions/{course_id}`` Studio endpoint.

        Returns:
            ``[{"key", "created", "size", "sha256", "url"}]``
        """
        url = self.studio_url + BACKUP_VERSIONS_PATH + quote(course_id, safe=":+@")
        versions: list[dict[str, Any]] = self._answer(self._send("GET", url))["versions"]
        return versions
