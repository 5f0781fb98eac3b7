"""The LMS APIs the operators' scripts use beside this plugin's: courses and enrollments."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from tutor_exportbulk.client.transport import Transport

COURSES_PATH = "/api/courses/v1/courses/"
BULK_ENROLL_PATH = "/api/bulk_enroll/v1/bulk_enroll/"
ENROLLMENT_PATH = "/api/enrollment/v1/enrollment"
COURSEWARE_PATH = "/api/courseware/course/"


class LMSMixin(Transport):
    """Course listing, bulk enrollment, enrollments and courseware details of the LMS."""

    def iter_courses(self, org: str | None = None, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """
        Yield the courses visible to the requesting user, one page at a time.
        Calls the ``/api/courses/v1/courses/`` LMS endpoint.

        Only the query of each ``pagination.next`` link is taken: the pages are always asked of
        ``base_url``, so a proxy-rewritten host or scheme in the link cannot send the token
        elsewhere.

        Args:
            org: only the courses of this organization.
            page_size: courses per page (the LMS allows 100 at most; it throttles the calls).

        Returns:
            An iterator of course dicts (see ``list_all_courses``).
        """
        url = self.base_url + COURSES_PATH
        params: dict[str, Any] = {"page_size": page_size}
        if org:
            params["org"] = org
        while True:
            page = self._get(url, params)
            yield from page.get("results", [])
            next_link = page.get("pagination", page).get("next")
            if not next_link:
                return
            params = parse_qs(urlsplit(next_link).query)

    def list_all_courses(self, org: str | None = None, page_size: int = 100) -> list[dict[str, Any]]:
        """
        Get the full list of courses visible to the requesting user, following every page.
        Calls the ``/api/courses/v1/courses/`` LMS endpoint.

        Args:
            org: filter by organization.
            page_size: courses asked per page.

        Returns:
            List of dict in the form::

                [{"id": "course-v1:<org>+<code>+<run>", "course_id": "...", "name": "Course name",
                  "org": "<org>", "number": "<code>", "start": "2018-01-11T00:00:00Z",
                  "end": None, "pacing": "instructor", "blocks_url": "...", "media": {...}, ...}, ...]
        """
        return list(self.iter_courses(org, page_size))

    def change_enrollment(
        self,
        emails: Iterable[str] | str,
        courses: Iterable[str] | str,
        action: str = "enroll",
        url: str | None = None,
        auto_enroll: bool = True,
        email_students: bool = True,
        cohorts: Iterable[str] | str | None = None,
    ) -> dict[str, Any]:
        """
        Enroll or unenroll (depending on the value of action) the list of emails in the list of courses.
        Calls the ``/api/bulk_enroll/v1/bulk_enroll/`` LMS endpoint (global staff only).

        Args:
            emails: emails (or usernames) to enroll.
            courses: course ids to enroll them in.
            action: ``"enroll"`` or ``"unenroll"``.
            url: url of the LMS (base or site). Defaults to ``base_url``.
            auto_enroll: users not registered yet are enrolled as soon as they register.
            email_students: an email is sent to each learner about the change.
            cohorts: one cohort name per course (same order), to add the learners to; enroll only.

        Returns:
            dict in the form::

                {"action": "enroll", "auto_enroll": true, "email_students": true,
                 "courses": {"course-v1:ORG+CODE+RUN": {
                     "action": "enroll", "auto_enroll": true,
                     "results": [{"identifier": "mail@example.com",
                                  "before": {"enrollment": false, "allowed": false, "user": true,
                                             "auto_enroll": false},
                                  "after": {"enrollment": true, "allowed": false, "user": true,
                                            "auto_enroll": false}},
                                 {"identifier": "not-an-email", "invalidIdentifier": true}, ...]}}}
        """
        # The serializer takes comma-separated strings, not JSON lists.
        body = {
            "identifiers": comma_separated(emails),
            "courses": comma_separated(courses),
            "action": action,
            "auto_enroll": auto_enroll,
            "email_students": email_students,
        }
        if cohorts:
            body["cohorts"] = comma_separated(cohorts)
        endpoint = (url or self.base_url).rstrip("/") + BULK_ENROLL_PATH
        answer: dict[str, Any] = self._answer(self._send("POST", endpoint, json=body))
        return answer

    def get_enrollments(self, username: str | None = None) -> list[dict[str, Any]]:
        """
        Get the course enrollments of the requesting user (or of ``username``, which needs staff).
        Calls the ``/api/enrollment/v1/enrollment`` LMS endpoint.

        Args:
            username: whose enrollments; defaults to the requesting user.

        Returns:
            List of dict in the form::

                [{"created": "2024-03-01T10:00:00Z", "mode": "audit", "is_active": true,
                  "user": "<username>",
                  "course_details": {"course_id": "course-v1:...", "course_name": "...",
                                     "enrollment_start": None, "enrollment_end": None,
                                     "course_start": "...", "course_end": None,
                                     "invite_only": false, "course_modes": [...],
                                     "pacing_type": "Instructor Paced"}}, ...]
        """
        params = {"user": username} if username else None
        enrollments: list[dict[str, Any]] = self._get(self.base_url + ENROLLMENT_PATH, params)
        return enrollments

    def get_course(self, course_id: str, username: str | None = None) -> dict[str, Any]:
        """
        Get the courseware details of one course, as the learning MFE sees them.
        Calls the ``/api/courseware/course/{course_key}`` LMS endpoint.

        Args:
            course_id: the course key, e.g. ``course-v1:edX+DemoX+Demo_Course``.
            username: a user to masquerade as (staff only).

        Returns:
            dict with ``id``, ``name``, ``org``, ``number``, ``start``, ``end``, ``pacing``,
            ``enrollment`` ({"mode", "is_active"}), ``media``, ``access_expiration``, ...
        """
        params = {"username": username} if username else None
        course: dict[str, Any] = self._get(
            self.base_url + COURSEWARE_PATH + quote(course_id, safe=":+@"), params
        )
        return course


def comma_separated(values: Iterable[str] | str) -> str:
    """The form the bulk enrollment serializer takes: one comma-separated string."""
    return values if isinstance(values, str) else ",".join(values)
