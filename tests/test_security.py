"""
Issue 16: what an independent attack on the running server found, each finding as a test.

Each test names its item of the issue and fails without that item's fix.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time

import jwt
import pytest
import requests
from django.contrib.auth.models import Group
from django.urls import reverse
from opaque_keys.edx.keys import CourseKey
from rest_framework.test import APIClient

from plugin_app.backends.olx_directory import author_group_name
from plugin_app.models import BulkProcess
from tests.builders import SAMPLE_COURSE_ID
from tests.conftest import jwt_for

pytestmark = pytest.mark.django_db

EXPORT_URL = "/api/courses/v0/export/"
UPLOAD_URL = "/api/courses/v0/content/bulk/upload"


def export_status(client, process_id: str) -> dict:
    answer = client.get(reverse("exportbulk:export-status", kwargs={"process_id": process_id}))
    assert answer.status_code == 200, answer.content
    return answer.json()["result"]


def run_export(client) -> str:
    answer = client.post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID], "async": True}, format="json")
    assert answer.status_code == 202, answer.content
    return answer.json()["processId"]


# 1. Access is re-checked when a status is read; a URL serves its own process's object -----------


def test_removed_author_gets_no_url_and_old_urls_serve_the_old_export(
    client_for, author, staff, sample_course, bucket
):
    s3, bucket_name = bucket
    client = client_for(author)
    first = run_export(client)
    old_url = export_status(client, first)["successful_uploads"][SAMPLE_COURSE_ID]
    old_bytes = requests.get(old_url, timeout=30).content

    # The author leaves the course; the course changes and is exported again (by staff).
    author.groups.remove(Group.objects.get(name=author_group_name(CourseKey.from_string(SAMPLE_COURSE_ID))))
    (sample_course / "about" / "overview.html").write_text("<p>New, secret content.</p>\n")
    run_export(client_for(staff))

    status = export_status(client, first)
    assert status["successful_uploads"] == {} and status["report"] is None
    assert "no longer" in status["failed_uploads"][SAMPLE_COURSE_ID]
    # The URL handed out before is bound to the first process's object: it never serves the new one.
    assert requests.get(old_url, timeout=30).content == old_bytes
    latest = s3.get_object(Bucket=bucket_name, Key=f"{SAMPLE_COURSE_ID}.tar.gz")["Body"].read()
    assert latest != old_bytes  # the seed's contract: <course_id>.tar.gz is the latest export


def test_local_storage_urls_are_per_process_too(client_for, staff, sample_course, local_storage):
    client = client_for(staff)
    first, second = run_export(client), run_export(client)
    urls = [export_status(client, p)["successful_uploads"][SAMPLE_COURSE_ID] for p in (first, second)]
    names = [str(p.relative_to(local_storage)) for p in local_storage.rglob("*.tar.gz")]
    assert sorted(names) == sorted(
        [f"{SAMPLE_COURSE_ID}.tar.gz", *(f"exports/{p}/{SAMPLE_COURSE_ID}.tar.gz" for p in (first, second))]
    )
    assert urls[0] != urls[1]


# 2. Stale JWT claims never rewrite users; missing or inactive users are refused ----------------


def test_stale_administrator_claim_does_not_make_a_demoted_user_staff(client_for, staff):
    token = jwt_for(staff)  # administrator: true
    staff.is_staff = False
    staff.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"JWT {token}")
    assert client.get(reverse("exportbulk:export-status-list")).status_code == 200
    staff.refresh_from_db()
    assert staff.is_staff is False


@pytest.mark.parametrize("change", ["deleted", "deactivated"])
def test_token_of_a_deleted_or_deactivated_user_is_refused(django_user_model, staff, change):
    token = jwt_for(staff)
    if change == "deleted":
        staff.delete()
    else:
        staff.is_active = False
        staff.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"JWT {token}")
    assert client.get(reverse("exportbulk:export-status-list")).status_code == 401
    assert not django_user_model.objects.filter(username="staff", is_active=True).exists()


# 3. Request validators check list lengths first, and are linear ------------------------------


def test_huge_course_list_is_refused_by_its_length_at_once(client_for, staff, sample_course, local_storage):
    courses = [f"c{n}" for n in range(200_000)]  # 2 MB, as sent in the attack
    started = time.perf_counter()
    answer = client_for(staff).post(EXPORT_URL, {"courses": courses}, format="json")
    elapsed = time.perf_counter() - started
    assert answer.status_code == 400 and "200000 courses requested" in answer.json()["developer_message"]
    assert elapsed < 5, elapsed  # it was quadratic: 455 s on the attacked server
    assert not BulkProcess.objects.exists()


def test_duplicate_check_is_linear(client_for, staff, settings, sample_course, local_storage):
    settings.EXPORTBULK_MAX_COURSES_PER_REQUEST = 100_000
    courses = [f"c{n}" for n in range(90_000)] + ["c1"]
    started = time.perf_counter()
    answer = client_for(staff).post(EXPORT_URL, {"courses": courses}, format="json")
    assert time.perf_counter() - started < 5
    assert answer.status_code == 400 and "Duplicate course ids: c1." in answer.content.decode()


# 6. The DEBUG error page shows no key material and no password --------------------------------


def test_debug_error_page_shows_no_signing_key_nor_passwords(settings, client_for, staff, monkeypatch):
    from django.conf import settings as live_settings

    broker_password = "-".join(["broker", "pa55word", "never", "shown"])  # not in this file's source
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = f"redis://default:{broker_password}@127.0.0.1:6379/0"
    settings.EXPORTBULK_CACHE_URL = f"redis://:{broker_password}@cache.internal:6379/1"

    def fail(*args, **kwargs):
        raise RuntimeError("forced")

    monkeypatch.setattr("plugin_app.standalone.courses.CourseListView.get", fail)
    client = client_for(staff)
    client.raise_request_exception = False
    page = client.get(reverse("standalone-courses"), HTTP_ACCEPT="text/html")
    assert page.status_code == 500
    text = page.content.decode()
    assert "forced" in text and "CELERY_BROKER_URL" in text  # the debug page, with its settings
    private = json.loads(live_settings.JWT_AUTH["JWT_PRIVATE_SIGNING_JWK"])
    for part in ("d", "p", "q", "dp", "dq", "qi"):
        assert private[part] not in text, part
    assert broker_password not in text
    assert live_settings.SECRET_KEY not in text


# 10. Only the asymmetric keys the server publishes are accepted --------------------------------


def test_hs256_token_signed_with_the_secret_key_is_refused(staff):
    from django.conf import settings

    now = int(time.time())
    claims = {
        "iss": settings.JWT_AUTH["JWT_ISSUER"],
        "aud": settings.JWT_AUTH["JWT_AUDIENCE"],
        "iat": now,
        "exp": now + 600,
        "preferred_username": staff.username,
        "version": "1.2.0",
        "administrator": True,
    }
    for secret in (settings.SECRET_KEY, "x"):
        token = jwt.encode(claims, secret, algorithm="HS256")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"JWT {token}")
        assert client.get(reverse("exportbulk:export-status-list")).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"JWT {jwt_for(staff)}")
    assert client.get(reverse("exportbulk:export-status-list")).status_code == 200


# 11. Every error of the API is JSON ------------------------------------------------------------


@pytest.mark.parametrize("url", [EXPORT_URL, "/api/courses/v0/backup/", "/api/courses/v0/restore/"])
def test_deeply_nested_json_is_a_json_400(client_for, staff, url):
    body = "[" * 100_000 + "]" * 100_000
    answer = client_for(staff).post(url, body, content_type="application/json")
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["developer_message"]


@pytest.mark.parametrize("page", [2**62, 2**63 + 5, 10**30])
def test_huge_page_number_is_a_json_400(client_for, staff, page):
    answer = client_for(staff).get(reverse("exportbulk:export-status-list"), {"page": page})
    assert answer.status_code == 400
    assert answer.json()["params"]["err"] == "INVALID_REQUEST"


def test_unexpected_error_in_the_api_is_json(client_for, staff, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("plugin_app.api.list_processes", fail)
    client = client_for(staff)
    client.raise_request_exception = False
    answer = client.get(reverse("exportbulk:export-status-list"))
    assert answer.status_code == 500
    assert answer.json() == {
        "developer_message": "Internal error; see the server logs.",
        "error_code": "server_error",
    }


# Uploads: helpers ----------------------------------------------------------------------------


def upload(client, rows: list[dict], files: dict[str, bytes], mode: str = "link"):
    from tests.builders import content_zip, manifest
    from tests.test_upload_api import post_upload

    return post_upload(client, manifest(rows), content_zip(files), mode)


def refusal(answer, column: str, fragment: str) -> None:
    assert answer.status_code == 400, answer.content
    errors = answer.json()["result"]["errors"]
    assert any(e["column"] == column and fragment in e["message"] for e in errors), errors
    assert not BulkProcess.objects.exists()


UNIT = "Safe Section / Safe Sub / Safe Unit"


# 4. The bytes one upload writes are bounded ------------------------------------------------------


def test_one_file_named_by_many_rows_counts_each_time(
    client_for, staff, sample_course, local_storage, settings
):
    settings.EXPORTBULK_UPLOAD_MAX_WRITE_BYTES = 10 * 1024**2
    big = b"%PDF-1.4 " + os.urandom(1024**2)  # 1 MiB: 11 rows naming it would write 11 MiB
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": "big.pdf"}] * 11
    answer = upload(client_for(staff), rows, {"big.pdf": big}, "upload")
    refusal(answer, "file", "the limit is 10485760 (EXPORTBULK_UPLOAD_MAX_WRITE_BYTES)")
    assert not (sample_course / "static" / "big.pdf").exists()
    assert upload(client_for(staff), rows[:9], {"big.pdf": big}, "upload").status_code == 200


# 7. Characters XML cannot hold are refused; a refused row writes nothing; the course still parses


HOSTILE_ROWS = {
    "control character in the outline path": ({"unit": "Bad\x0bSection / Sub / Unit"}, "unit"),
    "control character in the title": ({"display_name": "evil\x01name"}, "display_name"),
    "control character in the HTML": ({"file": "evil.html"}, "file"),
    "unit that does not exist": (
        {"unit": "block-v1:ExportBulk+Sample+2026+type@vertical+block@nope", "file": "n.pdf"},
        None,
    ),
}


def test_hostile_rows_never_corrupt_the_course(client_for, staff, sample_course, local_storage):
    from tests.conftest import edx_cleaner_errors
    from tests.test_upload_api import tree_digest

    baseline = edx_cleaner_errors(sample_course)
    files = {"ok.html": b"<p>fine</p>", "evil.html": b"<p>a\x01b</p>", "n.pdf": b"%PDF-1.4 n"}
    client = client_for(staff)
    for case, (cells, column) in HOSTILE_ROWS.items():
        before = tree_digest(sample_course)
        row = {"course_id": SAMPLE_COURSE_ID, "file": "ok.html", "unit": UNIT, **cells}
        answer = upload(client, [row], files)
        if column:  # refused whole at validation
            refusal(answer, column, "control character")
        else:  # fails its row at run time, before anything is written
            assert answer.status_code == 200, answer.content
            status = client.get(
                reverse(
                    "exportbulk:upload-status", kwargs={"process_id": answer.json()["result"]["processId"]}
                )
            ).json()["result"]
            assert status["failedCount"] == 1, case
            BulkProcess.objects.all().delete()
        assert tree_digest(sample_course) == before, case
        assert edx_cleaner_errors(sample_course) == baseline, case  # olxcleaner still parses it
    # Every later upload into the course works, and the course parses as before.
    ok = upload(client, [{"course_id": SAMPLE_COURSE_ID, "file": "ok.html", "unit": UNIT}], files)
    assert ok.status_code == 200
    assert edx_cleaner_errors(sample_course) == baseline


# 12. Transcripts named alike never overwrite each other nor an asset ---------------------------


def test_transcripts_with_one_name_are_kept_apart(client_for, staff, sample_course, local_storage):
    from tests.builders import SRT

    rows = [
        {"course_id": SAMPLE_COURSE_ID, "file": "v1.mp4", "unit": UNIT, "transcript": "d1/t.srt"},
        {"course_id": SAMPLE_COURSE_ID, "file": "v2.mp4", "unit": UNIT, "transcript": "d2/t.srt"},
        {"course_id": SAMPLE_COURSE_ID, "file": "d3/t.srt", "unit": UNIT},
    ]
    srts = {name: SRT.replace(b"Hello", name.encode()) for name in ("d1/t.srt", "d2/t.srt", "d3/t.srt")}
    answer = upload(client_for(staff), rows, {"v1.mp4": b"\0mp4", "v2.mp4": b"\0mp4", **srts})
    assert answer.status_code == 200, answer.content
    static = {p.name: p.read_bytes() for p in (sample_course / "static").iterdir() if p.suffix == ".srt"}
    assert static["t.srt"] == srts["d3/t.srt"]
    assert sorted(srts.values()) == sorted(v for v in static.values() if v in srts.values())


# 14. Names longer than the filesystem holds are refused up front -------------------------------


def test_file_name_over_255_bytes_is_refused_at_validation(client_for, staff, sample_course, local_storage):
    name = "n" * 300 + ".pdf"
    answer = upload(
        client_for(staff), [{"course_id": SAMPLE_COURSE_ID, "file": name}], {name: b"%PDF"}, "upload"
    )
    refusal(answer, "file", "the limit is 255")


# 15. A file's bytes match the type the app presents it as ---------------------------------------


def test_pdf_that_is_really_html_is_refused(client_for, staff, sample_course, local_storage):
    html = b"<html><script>alert(document.cookie)</script></html>"
    answer = upload(
        client_for(staff), [{"course_id": SAMPLE_COURSE_ID, "file": "a.pdf"}], {"a.pdf": html}, "upload"
    )
    refusal(answer, "file", "is not a PDF")
    assert not (sample_course / "static" / "a.pdf").exists()


# 8. Password grant only for its applications; failed sign-ins are throttled --------------------


def make_app(user, client_id: str, grant: str):
    from oauth2_provider.models import AbstractApplication, get_application_model

    return get_application_model().objects.create(
        user=user,
        name=client_id,
        client_id=client_id,
        client_secret="right-secret",
        client_type=AbstractApplication.CLIENT_CONFIDENTIAL,
        authorization_grant_type=grant,
    )


def token(client_id: str, secret: str = "right-secret", ip: str = "10.0.0.1", **form):
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, **form}
    return APIClient().post("/oauth2/access_token/", form, REMOTE_ADDR=ip)


def test_password_grant_only_through_an_application_registered_for_it(staff):
    make_app(staff, "service", "client-credentials")
    make_app(staff, "mobile", "password")
    login = {"grant_type": "password", "username": "staff", "password": "pw"}
    refused = token("service", **login)
    assert refused.status_code in (400, 401) and refused.json()["error"] == "unauthorized_client"
    assert token("mobile", **login).status_code == 200


def test_jwt_for_a_client_without_user_is_a_json_400():
    """JsonResponse's second argument is its encoder: the status must be given by name."""
    make_app(None, "orphan", "client-credentials")
    answer = token("orphan", token_type="jwt")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_client"


def test_wrong_secrets_from_one_address_never_lock_out_the_right_one_elsewhere(staff, settings):
    """A client id is no secret: guesses hold their own address, not the client (issue 25.2)."""
    from django.core.cache import cache

    cache.clear()
    settings.EXPORTBULK_AUTH_FAILURE_RATE = "10/m"
    make_app(staff, "service", "client-credentials")
    for _ in range(20):  # the right secret, often: never throttled
        assert token("service").status_code == 200
    answers = [token("service", secret=f"guess{n}", ip="10.1.0.1").status_code for n in range(50)]
    assert 429 in answers and set(answers) == {401, 429}, answers
    held = token("service", ip="10.1.0.1")  # the guessing address is held, even when right
    assert held.status_code == 429 and held["Retry-After"] == "60"
    assert "try again in 60 seconds" in held.json()["error_description"]
    assert token("service", ip="10.2.0.1").status_code == 200  # the real client, elsewhere
    # One address guessing many clients is held too.
    for n in range(10):
        assert token(f"nobody{n}", secret="guess", ip="10.3.0.1").status_code == 401
    assert token("service", ip="10.3.0.1").status_code == 429


def test_wrong_passwords_from_one_address_never_lock_out_the_user_elsewhere(staff, settings):
    from django.core.cache import cache

    cache.clear()
    settings.EXPORTBULK_AUTH_FAILURE_RATE = "10/m"
    make_app(staff, "mobile", "password")
    guesses = [
        token("mobile", ip="10.4.0.1", grant_type="password", username="staff", password=f"g{n}").status_code
        for n in range(50)
    ]
    assert 429 in guesses and set(guesses) <= {400, 401, 429}, guesses
    login = {"grant_type": "password", "username": "staff", "password": "pw"}
    assert token("mobile", ip="10.4.0.1", **login).status_code == 429
    assert token("mobile", ip="10.5.0.1", **login).status_code == 200


def test_failed_admin_logins_are_throttled(staff, settings):
    from django.core.cache import cache
    from django.test import Client

    cache.clear()
    settings.EXPORTBULK_AUTH_FAILURE_RATE = "3/m"
    client = Client()
    for _ in range(3):
        assert client.post("/admin/login/", {"username": "staff", "password": "wrong"}).status_code == 200
    assert client.post("/admin/login/", {"username": "staff", "password": "pw"}).status_code == 429
    right = {"username": "staff", "password": "pw"}
    assert client.post("/admin/login/", right, REMOTE_ADDR="10.9.0.1").status_code == 302


# 9. A body is refused by its declared length, before it is read --------------------------------


def test_upload_declaring_a_huge_body_is_refused_before_reading(
    client_for, staff, sample_course, local_storage
):
    from tests.builders import content_zip, manifest

    client = client_for(staff)
    data = {"file": io.BytesIO(manifest([{"course_id": SAMPLE_COURSE_ID, "file": "a.pdf"}]))}
    data["content"] = io.BytesIO(content_zip({"a.pdf": b"%PDF"}))
    data["file"].name, data["content"].name = "m.csv", "c.zip"
    answer = client.post(UPLOAD_URL, data, format="multipart", CONTENT_LENGTH=str(3 * 1024**3))
    assert answer.status_code == 413
    assert answer.json()["developer_message"].startswith("The request body is 3221225472 bytes; the limit is")
    assert not BulkProcess.objects.exists()


# 13. Hosts: only allowed ones; URLs on the configured base --------------------------------------


def test_forged_host_is_refused_and_urls_use_the_configured_base(
    client_for, staff, sample_course, local_storage, settings
):
    client = client_for(staff)
    assert client.get(reverse("exportbulk:export-status-list"), HTTP_HOST="evil.example").status_code == 400
    settings.EXPORTBULK_BASE_URL = "https://exports.example.org/"
    process_id = run_export(client)
    url = export_status(client, process_id)["successful_uploads"][SAMPLE_COURSE_ID]
    assert url.startswith("https://exports.example.org/api/courses/v0/exportbulk/files/")


def test_allowed_hosts_default_to_loopback():
    import subprocess
    import sys

    code = "from plugin_app.standalone import settings; print(settings.ALLOWED_HOSTS)"
    env = {k: v for k, v in os.environ.items() if k != "EXPORTBULK_ALLOWED_HOSTS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['localhost', '127.0.0.1', '[::1]']"


def test_provisioning_a_short_client_secret_warns_and_a_long_one_does_not(db):
    from django.core.management import call_command

    from plugin_app.management.commands.exportbulk_provision import MIN_SECRET_LENGTH

    args = ["--username", "svc", "--email", "svc@example.com", "--client-id", "cli"]
    warned = io.StringIO()
    call_command(
        "exportbulk_provision", *args, "--client-secret", "s3cret", stdout=io.StringIO(), stderr=warned
    )
    assert "has 6 characters; use at least 32 random ones" in warned.getvalue()
    assert "s3cret" not in warned.getvalue()  # a secret never shows in messages
    quiet = io.StringIO()
    secret = secrets.token_urlsafe(24)
    assert len(secret) == MIN_SECRET_LENGTH
    call_command("exportbulk_provision", *args, "--client-secret", secret, stdout=io.StringIO(), stderr=quiet)
    assert quiet.getvalue() == ""
