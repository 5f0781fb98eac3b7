"""
Issue 16: what an independent attack on the running server found, each finding as a test.

Each test names its item of the issue and fails without that item's fix.
"""

from __future__ import annotations

import json
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


def test_deeply_nested_json_is_a_json_400(client_for, staff):
    body = "[" * 100_000 + "]" * 100_000
    answer = client_for(staff).post(EXPORT_URL, body, content_type="application/json")
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
