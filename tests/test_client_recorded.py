"""
The REST client and the CLI against a real HTTP server on 127.0.0.1 that answers recorded LMS
responses (tests/recorded/*.json, shaped as edx-platform's serializers answer) and keeps every
request it got: for what the standalone server does not serve (bulk enroll, enrollments,
courseware) and for token, retry and error behaviour that needs a server to misbehave on cue.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner

from tutor_exportbulk.cli import standalone_cli, tutor_group
from tutor_exportbulk.client import OpenedxAPIError, OpenedxAuthError, OpenedxRESTAPIClient

RECORDED = Path(__file__).parent / "recorded"
CLIENT_ID, CLIENT_SECRET = "exportbulk-client", "s3cret-never-printed"
TOKEN = "/oauth2/access_token/"
COURSES = "/api/courses/v1/courses/"
BULK_ENROLL = "/api/bulk_enroll/v1/bulk_enroll/"
ENROLLMENT = "/api/enrollment/v1/enrollment"
DEMO = "course-v1:edX+DemoX+Demo_Course"
E2E = "course-v1:edX+E2E-101+course"
UPLOAD = "/api/courses/v0/content/bulk/upload"
UPLOAD_STATUS = UPLOAD + "/status/9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b"
EXPORT_STATUS = "/api/courses/v0/export/status/9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b"
PROCESS = "/api/courses/v0/processes/9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b"


# The replay server ---------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}

    def json(self):
        return json.loads(self.body)


class Replay:
    """Answers queued recordings per (method, path); the last one of a queue repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[str]] = {}
        self.seen: list[Seen] = []
        self.tokens_issued = 0
        self.token_lifetime = 36000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, method: str, path: str, *recordings: str) -> None:
        self.routes[(method, path)] = list(recordings)

    def to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def _respond(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        seen = Seen(
            handler.command,
            parts.path,
            parse_qs(parts.query),
            {name.lower(): value for name, value in handler.headers.items()},
            handler.rfile.read(length),
        )
        self.seen.append(seen)
        queue = self.routes.get((seen.method, seen.path))
        if queue:
            recording = json.loads((RECORDED / f"{queue[0]}.json").read_text())
            if len(queue) > 1:
                queue.pop(0)
        elif (seen.method, seen.path) == ("POST", TOKEN):
            recording = self._new_token()
        else:
            recording = {"status": 404, "body": {"detail": "Not found."}}
        if "body" in recording:
            text = json.dumps(recording["body"]).replace("{base_url}", self.url)
            content_type = "application/json"
        else:
            text, content_type = recording["text"], recording["content_type"]
        payload = text.encode()
        handler.send_response(recording["status"])
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _new_token(self) -> dict:
        """The recorded token answer, with a new token each time and the lifetime of the test."""
        recording = json.loads((RECORDED / "token.json").read_text())
        self.tokens_issued += 1
        recording["body"].update(access_token=f"token-{self.tokens_issued}", expires_in=self.token_lifetime)
        return recording

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                replay._respond(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

            def log_message(self, *args) -> None:
                pass

        return Handler


@pytest.fixture
def replay():
    server = Replay()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def client(replay) -> OpenedxRESTAPIClient:
    return OpenedxRESTAPIClient(replay.url, CLIENT_ID, CLIENT_SECRET, backoff=0)


def test_client_and_cli_import_neither_django_nor_tutor():
    """The operator's machine runs them without Django; Tutor is loaded only by `tutor exportbulk`."""
    code = "import sys, tutor_exportbulk.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'django'" not in loaded and "'tutor'" not in loaded and "'requests'" in loaded


# Tokens ---------------------------------------------------------------------------------------


def test_client_credentials_token_request_and_jwt_header(replay, client):
    replay.answer("GET", ENROLLMENT, "enrollments")
    client.get_enrollments()
    (token_request,) = replay.to(TOKEN)
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert token_request.form() == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_type": "jwt",
    }
    assert replay.to(ENROLLMENT)[0].headers["authorization"] == "JWT token-1"


def test_password_grant_and_bearer_header(replay):
    replay.answer("GET", ENROLLMENT, "enrollments")
    client = OpenedxRESTAPIClient(
        replay.url, CLIENT_ID, CLIENT_SECRET, username="service", password="pw", token_type="bearer"
    )
    client.get_enrollments()
    assert replay.to(TOKEN)[0].form() == {
        "grant_type": "password",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_type": "bearer",
        "username": "service",
        "password": "pw",
    }
    assert replay.to(ENROLLMENT)[0].headers["authorization"] == "Bearer token-1"


def test_token_is_reused_while_valid(replay, client):
    replay.answer("GET", ENROLLMENT, "enrollments")
    client.get_enrollments()
    client.get_enrollments()
    assert replay.tokens_issued == 1
    assert [seen.headers["authorization"] for seen in replay.to(ENROLLMENT)] == ["JWT token-1"] * 2


def test_token_about_to_expire_is_renewed_before_use(replay, client):
    replay.token_lifetime = 10  # under the client's renewal margin: stale on the next call
    replay.answer("GET", ENROLLMENT, "enrollments")
    client.get_enrollments()
    client.get_enrollments()
    assert replay.tokens_issued == 2
    assert [seen.headers["authorization"] for seen in replay.to(ENROLLMENT)] == ["JWT token-1", "JWT token-2"]


def test_401_gets_a_new_token_and_the_request_is_sent_once_more(replay, client):
    replay.answer("GET", ENROLLMENT, "token_expired", "enrollments")
    enrollments = client.get_enrollments()
    assert enrollments[0]["course_details"]["course_id"] == DEMO
    assert [seen.headers["authorization"] for seen in replay.to(ENROLLMENT)] == ["JWT token-1", "JWT token-2"]


def test_a_second_401_is_raised_not_retried_again(replay, client):
    replay.answer("POST", BULK_ENROLL, "token_expired")
    with pytest.raises(OpenedxAPIError) as error:
        client.change_enrollment(["learner@example.com"], [DEMO])
    assert error.value.status_code == 401
    assert error.value.message == "Token has expired."
    assert len(replay.to(BULK_ENROLL)) == 2 and replay.tokens_issued == 2


def test_refused_credentials_raise_an_auth_error_without_the_secret(replay, client):
    replay.answer("POST", TOKEN, "token_invalid_client")
    with pytest.raises(OpenedxAuthError) as error:
        client.list_all_courses()
    assert (error.value.status_code, error.value.url, error.value.message) == (
        401,
        replay.url + TOKEN,
        "invalid_client",
    )
    assert CLIENT_SECRET not in str(error.value) and CLIENT_SECRET not in repr(error.value.args)
    assert replay.to(COURSES) == []


def test_wrong_password_message_comes_from_error_description(replay):
    replay.answer("POST", TOKEN, "token_invalid_grant")
    client = OpenedxRESTAPIClient(replay.url, CLIENT_ID, CLIENT_SECRET, username="service", password="bad")
    with pytest.raises(OpenedxAuthError) as error:
        client.get_enrollments()
    assert (error.value.status_code, error.value.message) == (400, "Invalid credentials given.")
    assert "bad" not in error.value.url


# Retries --------------------------------------------------------------------------------------


def test_get_is_retried_on_503_then_succeeds(replay, client):
    replay.answer("GET", ENROLLMENT, "service_unavailable", "service_unavailable", "enrollments")
    assert client.get_enrollments()[0]["mode"] == "audit"
    assert len(replay.to(ENROLLMENT)) == 3


def test_get_retries_are_bounded(replay, client):
    replay.answer("GET", ENROLLMENT, "service_unavailable")
    with pytest.raises(OpenedxAPIError) as error:
        client.get_enrollments()
    assert error.value.status_code == 503
    assert "503 Service Unavailable" in error.value.message
    assert len(replay.to(ENROLLMENT)) == client.max_tries == 3


def test_post_is_never_retried_on_503(replay, client):
    replay.answer("POST", BULK_ENROLL, "service_unavailable", "bulk_enroll")
    with pytest.raises(OpenedxAPIError) as error:
        client.change_enrollment(["learner@example.com"], [DEMO])
    assert error.value.status_code == 503
    assert len(replay.to(BULK_ENROLL)) == 1


def test_connection_refused_is_an_api_error_without_status(replay):
    replay.server.shutdown()
    replay.server.server_close()
    client = OpenedxRESTAPIClient(replay.url, CLIENT_ID, CLIENT_SECRET, backoff=0, timeout=2)
    with pytest.raises(OpenedxAPIError) as error:
        client.get_enrollments()
    assert error.value.status_code is None
    assert error.value.url == replay.url + TOKEN


# LMS endpoints --------------------------------------------------------------------------------


def test_list_all_courses_follows_pagination_across_three_pages(replay, client):
    replay.answer("GET", COURSES, "courses_page1", "courses_page2", "courses_page3")
    courses = client.list_all_courses(org="edX")
    assert [c["id"] for c in courses] == [
        DEMO,
        E2E,
        "course-v1:edX+Intro+2024",
        "course-v1:edX+Olx+2025_T1",
        "course-v1:edX+Api+2025",
    ]
    pages = replay.to(COURSES)
    assert [seen.query for seen in pages] == [
        {"org": ["edX"], "page_size": ["100"]},
        {"org": ["edX"], "page": ["2"], "page_size": ["2"]},
        {"org": ["edX"], "page": ["3"], "page_size": ["2"]},
    ]
    # Page 2 links to an internal host: the third page was still asked of our server, with the token.
    assert all(seen.headers["authorization"] == "JWT token-1" for seen in pages)
    assert replay.tokens_issued == 1


def test_change_enrollment_posts_the_serializer_fields(replay, client):
    replay.answer("POST", BULK_ENROLL, "bulk_enroll")
    answer = client.change_enrollment(
        ["learner@example.com", "newcomer@example.com"], [DEMO, E2E], cohorts=["Group A", "Group B"]
    )
    (seen,) = replay.to(BULK_ENROLL)
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {
        "identifiers": "learner@example.com,newcomer@example.com",
        "courses": f"{DEMO},{E2E}",
        "action": "enroll",
        "auto_enroll": True,
        "email_students": True,
        "cohorts": "Group A,Group B",
    }
    assert answer["courses"][E2E]["results"][1]["after"] == {
        "enrollment": False,
        "allowed": True,
        "user": False,
        "auto_enroll": True,
        "cohort": "Group B",
    }


def test_unenroll_without_cohorts_sends_no_cohorts_field(replay, client):
    replay.answer("POST", BULK_ENROLL, "bulk_enroll")
    client.change_enrollment("learner@example.com", DEMO, action="unenroll", email_students=False)
    assert replay.to(BULK_ENROLL)[0].json() == {
        "identifiers": "learner@example.com",
        "courses": DEMO,
        "action": "unenroll",
        "auto_enroll": True,
        "email_students": False,
    }


def test_change_enrollment_on_another_site_url(replay, client):
    replay.answer("POST", BULK_ENROLL, "bulk_enroll")
    site = replay.url.replace("127.0.0.1", "localhost")
    client.change_enrollment(["learner@example.com"], [DEMO], url=site + "/")
    (seen,) = replay.to(BULK_ENROLL)
    assert seen.headers["host"] == site.removeprefix("http://")
    assert replay.to(TOKEN)[0].headers["host"] == replay.url.removeprefix("http://")


def test_bulk_enroll_validation_errors_become_the_message(replay, client):
    replay.answer("POST", BULK_ENROLL, "bulk_enroll_invalid_course")
    with pytest.raises(OpenedxAPIError) as error:
        client.change_enrollment(["learner@example.com"], ["not-a-course"])
    assert (error.value.status_code, error.value.message) == (
        400,
        "courses: Course key not valid: not-a-course",
    )
    assert error.value.body == {"courses": ["Course key not valid: not-a-course"]}


def test_get_enrollments_of_another_user(replay, client):
    replay.answer("GET", ENROLLMENT, "enrollments")
    enrollments = client.get_enrollments(username="learner")
    assert replay.to(ENROLLMENT)[0].query == {"user": ["learner"]}
    assert enrollments[0]["course_details"]["pacing_type"] == "Instructor Paced"


def test_get_course_puts_the_key_in_the_path(replay, client):
    replay.answer("GET", f"/api/courseware/course/{DEMO}", "courseware_course")
    course = client.get_course(DEMO)
    assert (course["id"], course["enrollment"]) == (DEMO, {"mode": "audit", "is_active": True})


def test_error_url_has_no_query_string(replay, client):
    replay.answer("GET", f"/api/courseware/course/{DEMO}", "courseware_not_found")
    with pytest.raises(OpenedxAPIError) as error:
        client.get_course(DEMO, username="learner")
    assert replay.to(f"/api/courseware/course/{DEMO}")[0].query == {"username": ["learner"]}
    assert error.value.url == f"{replay.url}/api/courseware/course/{DEMO}"
    assert (error.value.status_code, error.value.message) == (404, "Not found.")
    assert str(error.value) == f"404 from {error.value.url}: Not found."


# Studio endpoints: the answers the client must not mistake ------------------------------------


def test_export_partial_failure_is_returned_not_raised(replay, client):
    replay.answer("POST", "/api/courses/v0/export/", "export_partial")
    answer = client.export_courses([DEMO, "course-v1:No+Such+Course"])
    assert replay.to("/api/courses/v0/export/")[0].json() == {"courses": [DEMO, "course-v1:No+Such+Course"]}
    assert answer["failed_uploads"] == {"course-v1:No+Such+Course": "Course not found."}
    assert list(answer["successful_uploads"]) == [DEMO]


def test_export_bad_request_raises_with_developer_message(replay, client):
    replay.answer("POST", "/api/courses/v0/export/", "export_invalid")
    with pytest.raises(OpenedxAPIError) as error:
        client.export_courses(org="edX", all=True)
    assert replay.to("/api/courses/v0/export/")[0].json() == {"org": "edX", "all": True}
    assert error.value.status_code == 400
    assert error.value.message.startswith('Give exactly one of "courses"')


def test_bulk_upload_streams_a_multipart_body(replay, client, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(b"course_id,file,unit\r\ncourse-v1:edX+DemoX+Demo_Course,a.html,S / SS / U\r\n")
    content = io.BytesIO(b"PK\x03\x04" + bytes(range(256)) * 1000)
    content.name = "/somewhere/files.zip"
    replay.answer("POST", UPLOAD, "token_expired", "upload_accepted")  # the body is sent twice
    answer = client.bulk_upload(manifest, content, mode="link")
    assert answer == {"processId": "9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b"}
    first, second = replay.to(UPLOAD)
    assert first.body == second.body
    assert second.headers["operation-mode"] == "link"
    assert int(second.headers["content-length"]) == len(second.body)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + second.headers["content-type"].encode() + b"\r\n\r\n" + second.body
    )
    parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
    assert parts["file"].get_filename() == "manifest.csv"
    assert parts["file"].get_payload(decode=True) == manifest.read_bytes()
    assert parts["content"].get_filename() == "files.zip"
    assert parts["content"].get_content_type() == "application/zip"
    assert parts["content"].get_payload(decode=True) == content.getvalue()


def test_bulk_upload_refusal_keeps_the_row_errors(replay, client, tmp_path):
    (tmp_path / "m.csv").write_text("course_id,file\n")
    replay.answer("POST", UPLOAD, "upload_rejected")
    with pytest.raises(OpenedxAPIError) as error:
        client.bulk_upload(tmp_path / "m.csv", io.BytesIO(b"PK"), mode="upload")
    assert error.value.message == "The request has 2 error(s); nothing was uploaded."
    assert [e["row"] for e in error.value.body["result"]["errors"]] == [3, 5]


def test_status_envelope_error_raises_with_errmsg(replay, client):
    replay.answer("GET", EXPORT_STATUS, "process_not_found")
    with pytest.raises(OpenedxAPIError) as error:
        client.export_status("9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b")
    assert error.value.status_code == 404
    assert error.value.message == "Process Id 9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b is not found in the system"


def test_wait_yields_each_status_until_final(replay, client):
    replay.answer(
        "GET",
        UPLOAD_STATUS,
        "upload_status_processing",
        "upload_status_processing",
        "upload_status_completed",
    )
    statuses = [r["status"] for r in client.wait("9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b", interval=0.01)]
    assert statuses == ["Processing", "Processing", "Completed"]
    assert len(replay.to(UPLOAD_STATUS)) == 3


def test_wait_gives_up_after_its_timeout(replay, client):
    replay.answer("GET", UPLOAD_STATUS, "upload_status_processing")
    with pytest.raises(TimeoutError):
        list(client.wait("9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b", interval=0.05, timeout=0.2))
    with pytest.raises(ValueError):
        client.wait("x", kind="import")


# The CLI, both ways in ------------------------------------------------------------------------


@pytest.fixture
def run_cli(replay):
    """Runs ``exportbulk`` with its settings in EXPORTBULK_* variables, as a script would."""
    env = {
        "EXPORTBULK_LMS_URL": replay.url,
        "EXPORTBULK_CLIENT_ID": CLIENT_ID,
        "EXPORTBULK_CLIENT_SECRET": CLIENT_SECRET,
        "COLUMNS": "200",  # rich tables as wide as a terminal's, so no cell wraps
    }

    def run(*args: str, **extra_env: str):
        return CliRunner().invoke(standalone_cli, list(args), env={**env, **extra_env})

    return run


def test_cli_courses_json(replay, run_cli):
    replay.answer("GET", COURSES, "courses_page1", "courses_page2", "courses_page3")
    result = run_cli("courses", "--org", "edX", "--json")
    assert result.exit_code == 0, result.output
    assert [c["id"] for c in json.loads(result.stdout)][:2] == [DEMO, E2E]
    assert len(replay.to(COURSES)) == 3


def test_cli_courses_table_shows_names_verbatim(replay, run_cli):
    replay.answer("GET", COURSES, "courses_page1", "courses_page2", "courses_page3")
    result = run_cli("courses")
    assert result.exit_code == 0, result.output
    assert "Intro [beta] to Open edX" in result.stdout  # a bracket in a name is text, not markup
    assert "5 course(s)" in result.stdout


def test_cli_enroll_with_cohorts(replay, run_cli):
    replay.answer("POST", BULK_ENROLL, "bulk_enroll")
    args = ["enroll", "--email", "learner@example.com", "--email", "newcomer@example.com"]
    args += ["--course", DEMO, "--course", E2E, "--cohort", "Group A", "--cohort", "Group B"]
    result = run_cli(*args, "--no-email-students")
    assert result.exit_code == 0, result.output
    assert replay.to(BULK_ENROLL)[0].json()["cohorts"] == "Group A,Group B"
    assert replay.to(BULK_ENROLL)[0].json()["email_students"] is False
    assert "enrolled, cohort Group A" in result.stdout
    assert "allowed, auto-enroll, cohort Group B" in result.stdout


def test_cli_enroll_with_an_invalid_identifier_exits_1(replay, run_cli):
    replay.answer("POST", BULK_ENROLL, "bulk_enroll_invalid_identifier")
    result = run_cli("enroll", "--email", "learner@example.com", "--email", "not an email", "--course", DEMO)
    assert result.exit_code == 1
    assert "invalid identifier" in result.stdout


def test_cli_unenroll_json(replay, run_cli):
    replay.answer("POST", BULK_ENROLL, "bulk_enroll")
    result = run_cli("--json", "unenroll", "--email", "learner@example.com", "--course", DEMO)
    assert result.exit_code == 0, result.output
    assert replay.to(BULK_ENROLL)[0].json()["action"] == "unenroll"
    assert json.loads(result.stdout)["action"] == "enroll"  # what the recording says, passed through


def test_cli_refused_credentials_exit_2_without_the_secret(replay, run_cli):
    replay.answer("POST", TOKEN, "token_invalid_client")
    result = run_cli("courses")
    assert result.exit_code == 2
    assert "invalid_client" in result.stderr
    assert CLIENT_SECRET not in result.output


def test_cli_forbidden_exits_2_and_server_error_exits_1(replay, run_cli):
    replay.answer("GET", COURSES, "service_unavailable")
    assert run_cli("courses").exit_code == 1
    assert len(replay.to(COURSES)) == 3
    replay.answer("GET", ENROLLMENT, "token_expired")
    replay.answer("POST", BULK_ENROLL, "token_expired")
    result = run_cli("--json", "enroll", "--email", "a@example.com", "--course", DEMO)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["message"] == "Token has expired."


def test_cli_never_prints_an_html_error_page(replay, run_cli):
    replay.answer("GET", COURSES, "service_unavailable")  # a proxy's HTML page, three times

    result = run_cli("courses")

    assert result.exit_code == 1
    assert "HTTP 503 Service Unavailable: the server answered an HTML page" in result.output
    assert "<" not in result.output and "No server is available" not in result.output


def test_cli_without_settings_is_a_usage_error(run_cli):
    result = run_cli("courses", EXPORTBULK_LMS_URL="")
    assert result.exit_code == 2
    assert "Missing --lms-url" in result.stderr


def test_cli_export_partial_failure_exits_1(replay, run_cli):
    replay.answer("POST", "/api/courses/v0/export/", "export_partial")
    result = run_cli("export", DEMO, "course-v1:No+Such+Course", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["failed_uploads"] == {"course-v1:No+Such+Course": "Course not found."}
    assert run_cli("export", DEMO, "--all").exit_code == 2  # two selections: usage error
    assert len(replay.to("/api/courses/v0/export/")) == 1


def test_cli_upload_wait_reports_failed_rows_with_exit_1(replay, run_cli, tmp_path):
    (tmp_path / "m.csv").write_text("course_id,file\n")
    (tmp_path / "c.zip").write_bytes(b"PK")
    replay.answer("POST", UPLOAD, "upload_accepted")
    replay.answer("GET", UPLOAD_STATUS, "upload_status_processing", "upload_status_completed")
    args = ["upload", str(tmp_path / "m.csv"), "--content", str(tmp_path / "c.zip"), "--mode", "publish"]
    result = run_cli(*args, "--wait", "--interval", "0.05", "--json")
    assert result.exit_code == 1
    final = json.loads(result.stdout)
    assert (final["status"], final["successCount"], final["failedCount"]) == ("Completed", 3, 1)
    assert final["report"] == replay.url + "/api/courses/v0/exportbulk/files/signed-report-token"
    assert replay.to(UPLOAD)[0].headers["operation-mode"] == "publish"


def test_cli_upload_refused_lists_the_row_errors(replay, run_cli, tmp_path):
    (tmp_path / "m.csv").write_text("course_id,file\n")
    (tmp_path / "c.zip").write_bytes(b"PK")
    replay.answer("POST", UPLOAD, "upload_rejected")
    result = run_cli("upload", str(tmp_path / "m.csv"), "--content", str(tmp_path / "c.zip"))
    assert result.exit_code == 2  # a refused request, as the README says
    assert "pages/missing.html is not in the ZIP." in result.stderr


def test_cli_status_without_kind_asks_once_and_meets_no_404(replay, run_cli):
    replay.answer("GET", PROCESS, "process_upload_processing")
    result = run_cli("status", "9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b")
    assert result.exit_code == 0, result.output
    assert "Processing" in result.stdout and "upload 9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b" in result.stdout
    assert [seen.path for seen in replay.seen if seen.path != TOKEN] == [PROCESS]
    # Not finished: the next step is said.
    assert "Next: exportbulk status 9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b --wait" in result.stdout


def test_cli_list_every_kind(replay, run_cli):
    replay.answer("GET", "/api/courses/v0/export/status/list", "export_status_list")
    replay.answer("GET", UPLOAD + "/status/list", "upload_status_list")
    replay.answer("GET", "/api/courses/v0/backup/status/list", "backup_status_list")
    replay.answer("GET", "/api/courses/v0/restore/status/list", "restore_status_list")
    result = run_cli("list", "--json")
    assert result.exit_code == 0, result.output
    pages = json.loads(result.stdout)
    assert pages["export"]["exports"] == [] and pages["upload"]["uploads"][0]["status"] == "Completed"
    assert pages["backup"]["backups"][0]["processId"] == "07fe3d635ff54468b46e89e5b158cc00"
    assert pages["restore"]["restores"] == []


def test_cli_check(replay, run_cli):
    replay.answer("GET", COURSES, "courses_page3")
    replay.answer("GET", "/api/courses/v0/export/status/list", "export_status_list")
    replay.answer("GET", UPLOAD + "/status/list", "upload_status_list")
    replay.answer("GET", "/api/courses/v0/backup/status/list", "backup_status_list")
    replay.answer("GET", "/api/courses/v0/restore/status/list", "restore_status_list")
    replay.answer("GET", "/api/courses/v0/storage/check", "storage_check")
    result = run_cli("check")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ok"] * 7
    replay.answer("POST", TOKEN, "token_invalid_client")
    failed = run_cli("check", "--json")
    assert failed.exit_code == 2
    assert [c["ok"] for c in json.loads(failed.stdout)["checks"]] == [False]


def test_cli_config_file(replay, tmp_path):
    ini = tmp_path / "exportbulk.ini"
    ini.write_text(f"[exportbulk]\nlms_url = {replay.url}\nclient_id = from-file\nclient_secret = x\n")
    replay.answer("GET", COURSES, "courses_page3")
    result = CliRunner().invoke(standalone_cli, ["--config", str(ini), "courses", "--json"], env={})
    assert result.exit_code == 0, result.output
    assert replay.to(TOKEN)[0].form()["client_id"] == "from-file"
    (tmp_path / "bad.json").write_text(json.dumps({"lms_url": replay.url, "secret": "typo"}))
    result = CliRunner().invoke(standalone_cli, ["--config", str(tmp_path / "bad.json"), "courses"], env={})
    assert result.exit_code == 2 and "unknown keys secret" in result.stderr


def test_tutor_group_reads_hosts_and_credentials_from_the_tutor_config(replay, tmp_path):
    from tutor.commands.context import Context

    host = replay.url.removeprefix("http://")
    config = {
        "LMS_HOST": host,
        "CMS_HOST": host,
        "ENABLE_HTTPS": False,
        "EXPORTBULK_OAUTH2_CLIENT_ID": "tutor-client",
        "EXPORTBULK_OAUTH2_CLIENT_SECRET": "tutor-secret",
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    replay.answer("GET", COURSES, "courses_page3")
    result = CliRunner().invoke(tutor_group, ["courses", "--json"], obj=Context(str(tmp_path)))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["id"] == "course-v1:edX+Api+2025"
    assert replay.to(TOKEN)[0].form()["client_id"] == "tutor-client"
    (tmp_path / "config.yml").write_text(yaml.safe_dump({"LMS_HOST": host, "CMS_HOST": host}))
    result = CliRunner().invoke(tutor_group, ["courses"], obj=Context(str(tmp_path)))
    assert result.exit_code == 2 and "tutor plugins enable exportbulk" in result.stderr


def tutor_config(tmp_path: Path, url: str) -> Path:
    host = url.removeprefix("http://")
    config = {
        "LMS_HOST": host,
        "CMS_HOST": host,
        "ENABLE_HTTPS": False,
        "EXPORTBULK_OAUTH2_CLIENT_ID": "tutor-client",
        "EXPORTBULK_OAUTH2_CLIENT_SECRET": "tutor-secret",
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    return tmp_path


# The CLI as a person uses it --------------------------------------------------------------------


def test_cli_global_options_also_follow_the_command(replay):
    """What the "Missing --lms-url" message suggests works where people type it: after the command."""
    replay.answer("GET", COURSES, "courses_page3")
    args = ["courses", "--lms-url", replay.url, "--client-id", "after", "--client-secret", "x", "--json"]
    result = CliRunner().invoke(standalone_cli, args, env={"EXPORTBULK_LMS_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["id"] == "course-v1:edX+Api+2025"
    assert replay.to(TOKEN)[0].form()["client_id"] == "after"  # the option after the command wins


def test_cli_config_option_after_the_command(replay, tmp_path):
    (tmp_path / "c.json").write_text(
        json.dumps({"lms_url": replay.url, "client_id": "f", "client_secret": "s"})
    )
    replay.answer("GET", COURSES, "courses_page3")
    result = CliRunner().invoke(standalone_cli, ["courses", "--config", str(tmp_path / "c.json")], env={})
    assert result.exit_code == 0, result.output


def test_tutor_group_refuses_connection_options(replay, tmp_path):
    from tutor.commands.context import Context

    root = tutor_config(tmp_path, replay.url)
    result = CliRunner().invoke(tutor_group, ["courses", "--lms-url", "http://x"], obj=Context(str(root)))
    assert result.exit_code == 2 and "Tutor configuration" in result.stderr
    assert replay.seen == []


def test_cli_server_down_exits_3_and_check_says_so_once(replay, run_cli, tmp_path):
    from tutor.commands.context import Context

    root = tutor_config(tmp_path, replay.url)
    replay.server.shutdown()
    replay.server.server_close()
    result = run_cli("courses")
    assert result.exit_code == 3
    assert "could not connect" in result.stderr and "Is the server running" in result.stderr
    checked = CliRunner().invoke(tutor_group, ["check"], obj=Context(str(root)))
    assert checked.exit_code == 3
    lines = checked.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAILED") and lines[0].count("Cannot connect") == 1
    assert "tutor local start" in lines[0]


def test_cli_unknown_process_exits_2(replay, run_cli):
    replay.answer("GET", PROCESS, "process_not_found")
    result = run_cli("status", "9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b")
    assert result.exit_code == 2
    assert "is not found in the system" in result.stderr


def test_cli_upload_queued_says_the_next_step(replay, run_cli, tmp_path):
    (tmp_path / "m.csv").write_text("course_id,file\n")
    (tmp_path / "c.zip").write_bytes(b"PK")
    replay.answer("POST", UPLOAD, "upload_accepted")
    result = run_cli("upload", str(tmp_path / "m.csv"), "--content", str(tmp_path / "c.zip"))
    assert result.exit_code == 0, result.output
    assert "upload queued: 9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b" in result.stdout
    assert "Next: exportbulk status 9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b --wait" in result.stdout
    quiet = run_cli("upload", str(tmp_path / "m.csv"), "--content", str(tmp_path / "c.zip"), "--json")
    assert json.loads(quiet.stdout) == {"processId": "9b2d6c0e5f1a4e7b8c3d2a1f0e9d8c7b"}  # no hint in JSON


@pytest.mark.parametrize("columns", ["40", "200"])
def test_cli_ids_never_wrap_when_output_is_not_a_terminal(replay, run_cli, columns):
    replay.answer("GET", COURSES, "courses_page1", "courses_page2", "courses_page3")
    result = run_cli("courses", COLUMNS=columns)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert DEMO in lines and E2E in lines  # each id whole, on a line of its own


@pytest.mark.parametrize("width", [60, 200])
def test_tables_in_a_terminal_keep_ids_whole(width):
    from rich.console import Console

    from tutor_exportbulk.cli.output import print_records

    console = Console(force_terminal=True, width=width, record=True, color_system=None)
    url = "https://bucket.s3.example.com/exports/course-v1:edX+DemoX+Demo_Course.tar.gz?X-Amz-Signature=abc"
    print_records(console, "Exports", ("Course", "Result"), [(DEMO, url)], copyable=("Course", "Result"))
    text = console.export_text()
    assert DEMO in text and url in text


def test_download_cut_short_leaves_no_file(client, tmp_path):
    class Short(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.send_header("Content-Disposition", 'attachment; filename="../course.tar.gz"')
            self.end_headers()
            self.wfile.write(b"x" * 10)  # then the connection closes

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Short)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with pytest.raises(OpenedxAPIError):
            client.download(f"http://127.0.0.1:{server.server_port}/f", tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []
