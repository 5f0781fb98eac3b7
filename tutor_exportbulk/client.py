"""
A REST client for Open edX and for this plugin's APIs: requests only, no Django.

One ``requests.Session`` per client; the OAuth2 access token lives in memory and is renewed
before it expires, and once more when the server answers 401. Idempotent requests are retried
on connection errors, 429 and 5xx; a POST is sent once, since a repeat could do the work twice.
Every failure is an ``OpenedxAPIError`` carrying the status, a URL safe to print and the
server's own message.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import requests

from tutor_exportbulk.__about__ import __version__

TOKEN_PATH = "/oauth2/access_token/"
COURSES_PATH = "/api/courses/v1/courses/"
BULK_ENROLL_PATH = "/api/bulk_enroll/v1/bulk_enroll/"
ENROLLMENT_PATH = "/api/enrollment/v1/enrollment"
COURSEWARE_PATH = "/api/courseware/course/"
EXPORT_PATH = "/api/courses/v0/export/"
EXPORT_STATUS_PATH = "/api/courses/v0/export/status/"
UPLOAD_PATH = "/api/courses/v0/content/bulk/upload"
UPLOAD_STATUS_PATH = "/api/courses/v0/content/bulk/upload/status/"

FINAL_STATUSES = frozenset({"Completed", "Failed"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# The longest pause a server's Retry-After may impose on one retry.
MAX_RETRY_AFTER = 30.0

FileInput = str | os.PathLike | IO[bytes]


class OpenedxAPIError(Exception):
    """
    A request that did not get the answer it asked for.

    ``status_code`` is None when no answer came at all. ``url`` has no query string and no
    user info, so it can be printed or logged. ``body`` is the decoded JSON answer, if any
    (the bulk upload puts every row error in it).
    """

    def __init__(self, status_code: int | None, url: str, message: str, body: Any = None) -> None:
        self.status_code = status_code
        self.url = public_url(url)
        self.message = message
        self.body = body
        super().__init__(f"{status_code or 'No answer'} from {self.url}: {message}")


class OpenedxAuthError(OpenedxAPIError):
    """The token endpoint refused the credentials (wrong client, secret, grant or password)."""


def public_url(url: str) -> str:
    """The URL without query string, fragment or user info: what may show in errors and logs."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class OpenedxRESTAPIClient:
    """
    A client of the Open edX LMS and of this plugin's Studio APIs.

    Usage::

        client = OpenedxRESTAPIClient("https://lms.example.com", CLIENT_ID, CLIENT_SECRET,
                                      studio_url="https://studio.example.com")
        courses = client.list_all_courses(org="edX")

    Not meant to be shared between threads (neither is its ``requests.Session``).
    """

    # A token with less than this many seconds left is renewed before it is used.
    token_refresh_margin = 30.0

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        studio_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token_type: str = "jwt",
        timeout: float = 30.0,
        max_tries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        """
        Args:
            base_url: the LMS, with its scheme (``https://lms.example.com``); tokens come from it.
            client_id, client_secret: an OAuth2 application of the LMS (client credentials grant,
                or password grant when ``username`` and ``password`` are given).
            studio_url: Studio (the CMS), where the bulk export and upload APIs live. Defaults to
                ``base_url`` (the standalone server serves both).
            token_type: ``"jwt"`` (sent as ``Authorization: JWT ...``) or ``"bearer"``.
            timeout: seconds to wait for each answer.
            max_tries: attempts of an idempotent request that meets connection errors, 429 or 5xx.
            backoff: first pause between those attempts, doubled each time.
        """
        self.base_url = base_url.rstrip("/")
        self.studio_url = (studio_url or base_url).rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.username = username
        self._password = password
        self.token_type = token_type.lower()
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self.backoff = backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = (
            f"tutor-exportbulk/{__version__} {requests.utils.default_user_agent()}"
        )
        self._token: str | None = None
        self._token_renew_at = 0.0

    # Authentication ------------------------------------------------------------------------

    def access_token(self) -> str:
        """
        The access token, fetched from ``POST {base_url}/oauth2/access_token/`` when there is
        none yet or it is about to expire.

        Raises:
            OpenedxAuthError: the credentials were refused.
            OpenedxAPIError: the token endpoint failed otherwise.
        """
        if self._token is None or time.monotonic() >= self._token_renew_at:
            self._fetch_token()
        return self._token

    def _fetch_token(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "token_type": self.token_type,
        }
        if self.username and self._password:
            form.update(grant_type="password", username=self.username, password=self._password)
        url = self.base_url + TOKEN_PATH
        try:
            response = self.session.post(url, data=form, timeout=self.timeout)
        except requests.RequestException as exc:
            raise OpenedxAPIError(None, url, _no_answer(exc)) from exc
        if response.status_code != 200:
            refused = response.status_code in (400, 401, 403)
            error_class = OpenedxAuthError if refused else OpenedxAPIError
            raise error_class(response.status_code, url, error_message(response), _json_or_none(response))
        body = self._decode(response)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise OpenedxAuthError(response.status_code, url, "The token endpoint answered no access_token.")
        self._token = body["access_token"]
        lifetime = float(body.get("expires_in") or 0)
        self._token_renew_at = time.monotonic() + lifetime - self.token_refresh_margin

    def _authorization(self) -> str:
        scheme = "JWT" if self.token_type == "jwt" else "Bearer"
        return f"{scheme} {self.access_token()}"

    # Transport ---------------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """
        Send one authenticated request: renew the token once on 401, and retry an idempotent
        request on connection errors, 429 and 5xx, ``max_tries`` times at most.
        """
        retryable = method in IDEMPOTENT_METHODS
        headers = kwargs.pop("headers", {})
        body = kwargs.get("data")
        renewed, failures = False, 0
        while True:
            if hasattr(body, "seek"):
                body.seek(0)
            try:
                response = self.session.request(
                    method,
                    url,
                    headers={**headers, "Authorization": self._authorization()},
                    timeout=self.timeout,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failures += 1
                if retryable and failures < self.max_tries:
                    self._pause(failures, None)
                    continue
                raise OpenedxAPIError(None, url, _no_answer(exc)) from exc
            if response.status_code == 401 and not renewed:
                renewed = True
                self._token = None
                continue
            transient = response.status_code == 429 or response.status_code >= 500
            if transient and retryable and failures + 1 < self.max_tries:
                failures += 1
                self._pause(failures, response.headers.get("Retry-After"))
                continue
            return response

    def _pause(self, failures: int, retry_after: str | None) -> None:
        delay = self.backoff * 2 ** (failures - 1)
        with contextlib.suppress(TypeError, ValueError):
            delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
        time.sleep(delay)

    def _decode(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise OpenedxAPIError(response.status_code, response.url, f"Expected JSON, got {kind}.") from None

    def _get(self, url: str, params: dict | None = None) -> Any:
        return self._answer(self._send("GET", url, params=params))

    def _answer(self, response: requests.Response, ok: Iterable[int] = (200,)) -> Any:
        if response.status_code not in ok:
            raise _error(response)
        return self._decode(response)

    def _result(self, response: requests.Response) -> dict:
        """The ``result`` of a status envelope; an error (``params.err``) raises."""
        body = _json_or_none(response)
        params = body.get("params") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(params, dict) or params.get("err"):
            raise _error(response)
        return body["result"]

    # LMS --------------------------------------------------------------------------------------

    def iter_courses(self, org: str | None = None, page_size: int = 100) -> Iterator[dict]:
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

    def list_all_courses(self, org: str | None = None, page_size: int = 100) -> list[dict]:
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
    ) -> dict:
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
            "identifiers": _comma_separated(emails),
            "courses": _comma_separated(courses),
            "action": action,
            "auto_enroll": auto_enroll,
            "email_students": email_students,
        }
        if cohorts:
            body["cohorts"] = _comma_separated(cohorts)
        endpoint = (url or self.base_url).rstrip("/") + BULK_ENROLL_PATH
        return self._answer(self._send("POST", endpoint, json=body))

    def get_enrollments(self, username: str | None = None) -> list[dict]:
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
        return self._get(self.base_url + ENROLLMENT_PATH, params)

    def get_course(self, course_id: str, username: str | None = None) -> dict:
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
        return self._get(self.base_url + COURSEWARE_PATH + quote(course_id, safe=":+@"), params)

    # Studio: bulk export ------------------------------------------------------------------------

    def export_courses(
        self,
        course_ids: Iterable[str] | None = None,
        org: str | None = None,
        all: bool = False,
        async_: bool = False,
    ) -> dict:
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
            ``{"successful_uploads": {course_id: url}, "failed_uploads": {course_id: reason}}``;
            a partial failure is returned too, not raised. With ``async_``: ``{"processId": ...}``.
        """
        body: dict[str, Any] = {}
        if course_ids is not None:
            body["courses"] = list(course_ids)
        if org is not None:
            body["org"] = org
        if all:
            body["all"] = True
        if async_:
            body["async"] = True
        response = self._send("POST", self.studio_url + EXPORT_PATH, json=body)
        answer = _json_or_none(response)
        if response.status_code == 400 and isinstance(answer, dict) and "failed_uploads" in answer:
            return answer
        return self._answer(response, ok=(200, 202))

    def export_status(self, process_id: str) -> dict:
        """
        Get the status of one export process.
        Calls the ``/api/courses/v0/export/status/{processId}`` Studio endpoint.

        Returns:
            dict with ``processId``, ``status`` (Queued, Processing, Completed, Failed),
            ``totalCount``, ``successCount``, ``failedCount``, ``startTime``; once finished also
            ``endTime``, ``report`` and ``successful_uploads`` / ``failed_uploads``.
        """
        return self._result(self._send("GET", self.studio_url + EXPORT_STATUS_PATH + quote(process_id)))

    def export_status_list(self, page: int = 1) -> dict:
        """
        List the caller's export processes, newest first, one page.
        Calls the ``/api/courses/v0/export/status/list`` Studio endpoint.

        Returns:
            ``{"userId", "count", "next", "previous", "uploads": [{"processId", "uploadedDate", "status"}]}``
        """
        url = self.studio_url + EXPORT_STATUS_PATH + "list"
        return self._result(self._send("GET", url, params={"page": page}))

    # Studio: bulk upload ------------------------------------------------------------------------

    def bulk_upload(
        self, manifest: FileInput, content: FileInput | None = None, mode: str = "upload"
    ) -> dict:
        """
        Upload files into courses from a CSV manifest and a ZIP of the files it names.
        Calls the ``/api/courses/v0/content/bulk/upload`` Studio endpoint.

        The body is streamed from the files: a large ZIP is never held in memory whole.

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
            parts = [("file", _open(manifest, stack, "manifest.csv"), "text/csv")]
            if content is not None:
                parts.append(("content", _open(content, stack, "content.zip"), "application/zip"))
            body = MultipartBody(parts)
            headers = {"Content-Type": body.content_type, "operation-mode": mode}
            return self._result(self._send("POST", self.studio_url + UPLOAD_PATH, data=body, headers=headers))

    def upload_status(self, process_id: str) -> dict:
        """
        Get the status of one bulk upload.
        Calls the ``/api/courses/v0/content/bulk/upload/status/{processId}`` Studio endpoint.

        Returns:
            dict with ``processId``, ``status`` (Queued, Processing, Completed, Failed),
            ``totalCount``, ``successCount``, ``failedCount``, ``startTime``; once finished also
            ``endTime`` and ``report`` (URL of a CSV with every row's outcome).
        """
        return self._result(self._send("GET", self.studio_url + UPLOAD_STATUS_PATH + quote(process_id)))

    def upload_status_list(self, page: int = 1) -> dict:
        """
        List the caller's bulk uploads, newest first, one page.
        Calls the ``/api/courses/v0/content/bulk/upload/status/list`` Studio endpoint.

        Returns:
            ``{"userId", "count", "next", "previous", "uploads": [{"processId", "uploadedDate", "status"}]}``
        """
        url = self.studio_url + UPLOAD_STATUS_PATH + "list"
        return self._result(self._send("GET", url, params={"page": page}))

    def wait(
        self, process_id: str, kind: str = "upload", interval: float = 1.0, timeout: float | None = None
    ) -> Iterator[dict]:
        """
        Poll a process until it is Completed or Failed.

        Args:
            process_id: what ``bulk_upload`` or ``export_courses(async_=True)`` answered.
            kind: ``"upload"`` or ``"export"``.
            interval: seconds between two polls.
            timeout: give up (``TimeoutError``) after this many seconds; None waits for ever.

        Returns:
            An iterator of status results (see ``upload_status``); the last one is final.
        """
        status_of: dict[str, Callable[[str], dict]] = {
            "upload": self.upload_status,
            "export": self.export_status,
        }
        if kind not in status_of:
            raise ValueError(f"kind must be 'upload' or 'export', not {kind!r}")
        return self._poll(status_of[kind], process_id, interval, timeout)

    @staticmethod
    def _poll(
        status_of: Callable[[str], dict], process_id: str, interval: float, timeout: float | None
    ) -> Iterator[dict]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = status_of(process_id)
            yield result
            if result.get("status") in FINAL_STATUSES:
                return
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"Process {process_id} still {result.get('status')} after {timeout} s.")
            time.sleep(interval)


# Helpers -------------------------------------------------------------------------------------


def error_message(response: requests.Response) -> str:
    """The server's own explanation, in whichever shape this API gives it."""
    body = _json_or_none(response)
    if body is None:
        text = response.text.strip()
        return text[:500] if text else (response.reason or f"HTTP {response.status_code}")
    return _message_of(body) or response.reason or f"HTTP {response.status_code}"


def _message_of(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return " ".join(_message_of(item) for item in body)
    if not isinstance(body, dict):
        return str(body)
    params = body.get("params")
    if isinstance(params, dict) and params.get("errmsg"):  # the status envelope
        return str(params["errmsg"])
    for key in ("developer_message", "error_description", "detail", "message", "error"):
        if isinstance(body.get(key), str) and body[key]:
            return body[key]
    # DRF serializer errors: {"field": ["problem", ...], ...}
    return "; ".join(f"{key}: {_message_of(value)}" for key, value in body.items())


def _error(response: requests.Response) -> OpenedxAPIError:
    body = _json_or_none(response)
    return OpenedxAPIError(response.status_code, response.url, error_message(response), body)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _no_answer(exc: requests.RequestException) -> str:
    return "timed out" if isinstance(exc, requests.Timeout) else f"could not connect ({type(exc).__name__})"


def _comma_separated(values: Iterable[str] | str) -> str:
    return values if isinstance(values, str) else ",".join(values)


def _open(source: FileInput, stack: contextlib.ExitStack, default_name: str) -> tuple[str, IO[bytes]]:
    """A (file name, binary file) pair; paths are opened here and closed with the stack."""
    if isinstance(source, str | os.PathLike):
        return Path(source).name, stack.enter_context(open(source, "rb"))
    return Path(getattr(source, "name", "") or default_name).name, source


class MultipartBody:
    """
    A ``multipart/form-data`` body that reads its files piece by piece as it is sent.

    ``requests`` would read every file into memory to build the body; this one has a known
    length (so the server gets a Content-Length) and can be rewound for a resend.
    """

    chunk_size = 1 << 16

    def __init__(self, parts: list[tuple[str, tuple[str, IO[bytes]], str]]) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        # Each piece is (file, start offset, length); the framing lines are files too.
        self._pieces: list[tuple[IO[bytes], int, int]] = []
        for field, (filename, fileobj), media_type in parts:
            safe_name = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
            head = (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{field}"; filename="{safe_name}"\r\n'
                f"Content-Type: {media_type}\r\n\r\n"
            ).encode()
            self._add_bytes(head)
            start = fileobj.tell()
            size = fileobj.seek(0, os.SEEK_END) - start
            fileobj.seek(start)
            self._pieces.append((fileobj, start, size))
            self._add_bytes(b"\r\n")
        self._add_bytes(f"--{boundary}--\r\n".encode())
        self._length = sum(size for _, _, size in self._pieces)
        self.seek(0)

    def _add_bytes(self, data: bytes) -> None:
        self._pieces.append((io.BytesIO(data), 0, len(data)))

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self.chunk_size):
            yield chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Only rewinding is supported: a resend starts from the beginning."""
        if (offset, whence) != (0, os.SEEK_SET):
            raise io.UnsupportedOperation("a multipart body can only be rewound")
        self._index, self._offset = 0, 0
        return 0

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while self._index < len(self._pieces) and (size < 0 or len(out) < size):
            fileobj, start, length = self._pieces[self._index]
            if self._offset == length:  # an empty file, or the end of this piece
                self._index, self._offset = self._index + 1, 0
                continue
            fileobj.seek(start + self._offset)
            left = length - self._offset
            chunk = fileobj.read(left if size < 0 else min(left, size - len(out)))
            if not chunk:
                raise OSError(f"{getattr(fileobj, 'name', 'a file')} shrank while being uploaded")
            out += chunk
            self._offset += len(chunk)
        return bytes(out)
