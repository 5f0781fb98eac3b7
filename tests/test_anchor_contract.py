"""
The export anchor's contract (mitodl's ``ol_openedx_course_export``, as MIT's pipeline calls it),
in the request, against moto's S3 server over HTTP: the export answer's task ids, keys and URLs,
each course's task state, the content versions API, and the standalone server's LMS-side paths.
"""

from __future__ import annotations

import shutil
import time
import urllib.parse

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import lifecycle
from plugin_app.data import ItemStatus
from plugin_app.models import BulkItem
from tests.conftest import CLIENT_ID, CLIENT_SECRET, SAMPLE_COURSE_ID
from tests.test_export_api import copy_course

pytestmark = pytest.mark.django_db

EXPORT_URL = "/api/courses/v0/export/"
VERSIONS_URL = "/api/courses/v0/export/versions/"


def task_url(course_id: str, task_id: str) -> str:
    return f"{EXPORT_URL}{course_id}/?task_id={task_id}"


def export(client, *course_ids: str):
    return client.post(EXPORT_URL, {"courses": list(course_ids)}, format="json")


# The export answer --------------------------------------------------------------------------


def test_export_answer_carries_both_contracts_and_keys_that_name_the_objects(
    client_for, staff, olx_root, bucket
):
    s3, bucket_name = bucket
    other = copy_course(olx_root, "Other")
    response = export(client_for(staff), SAMPLE_COURSE_ID, other, "not-a-course-key")
    assert response.status_code == 400  # the seed's rule: any failure is a 400, successes kept
    body = response.json()
    assert set(body["successful_uploads"]) == {SAMPLE_COURSE_ID, other}
    assert body["failed_uploads"] == {"not-a-course-key": "Invalid course key."}
    # One task per exported course, already finished when the answer is sent; none for the refused id.
    assert (
        set(body["upload_task_ids"])
        == set(body["upload_keys"])
        == set(body["upload_urls"])
        == {
            SAMPLE_COURSE_ID,
            other,
        }
    )
    assert len(set(body["upload_task_ids"].values())) == 2 and body["pending_uploads"] == []
    for course_id, key in body["upload_keys"].items():
        assert key.endswith(f"/{course_id}.tar.gz")
        s3.head_object(Bucket=bucket_name, Key=key)  # the key names the stored object
        # On an S3-compatible endpoint the plain URL is path-style: endpoint, bucket, key as is.
        assert body["upload_urls"][course_id] == f"{s3.meta.endpoint_url}/{bucket_name}/{key}"


def test_upload_urls_on_aws_parse_back_to_bucket_and_key_as_the_pipeline_parses_them(
    client_for, staff, sample_course, bucket, settings
):
    body = export(client_for(staff), SAMPLE_COURSE_ID).json()
    key = body["upload_keys"][SAMPLE_COURSE_ID]
    settings.EXPORTBULK_S3_ENDPOINT_URL = ""  # AWS itself: virtual-hosted, as the anchor answers
    from plugin_app import storage

    url = urllib.parse.urlparse(storage.object_url(key))
    # ol-data-platform: the host's first label is the bucket, the path without its "/" the key, not unquoted.
    assert (url.netloc.split(".")[0], url.path[1:]) == (settings.EXPORTBULK_BUCKET, key)
    assert url.netloc.endswith(".s3.amazonaws.com") and not url.query


def test_a_sync_request_past_its_wait_answers_with_the_courses_still_running(
    client_for, staff, sample_course, bucket, settings, monkeypatch
):
    """A broker whose worker has not yet taken the course: the request stops waiting and answers
    200 with the task; the course stays queued (the workers would finish it)."""
    settings.EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS = 0.5
    monkeypatch.setattr(lifecycle, "dispatch", lambda process_id: None)
    started = time.monotonic()
    response = export(client_for(staff), SAMPLE_COURSE_ID)
    assert time.monotonic() - started >= 0.5
    assert response.status_code == 200
    body = response.json()
    assert body["pending_uploads"] == [SAMPLE_COURSE_ID] and body["successful_uploads"] == {}
    task_id = body["upload_task_ids"][SAMPLE_COURSE_ID]
    assert client_for(staff).get(task_url(SAMPLE_COURSE_ID, task_id)).json() == {"state": "Pending"}


def test_a_sync_request_without_a_wait_exports_in_the_request(
    client_for, staff, sample_course, bucket, settings
):
    settings.EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS = 0
    body = export(client_for(staff), SAMPLE_COURSE_ID).json()
    assert set(body["successful_uploads"]) == {SAMPLE_COURSE_ID} and body["pending_uploads"] == []


# Task states --------------------------------------------------------------------------------


def queued_task(user) -> tuple[BulkItem, str]:
    """An export of the sample course recorded and not sent to any worker."""
    from plugin_app.exports import create_export

    process_id = create_export(user, [SAMPLE_COURSE_ID], send=False)
    item = BulkItem.objects.get(process__process_id=process_id)
    return item, process_id


def state_of(client, item: BulkItem) -> dict:
    response = client.get(task_url(item.course_id, str(item.task_id)))
    assert response.status_code == 200, response.content
    return response.json()


def test_task_states_follow_the_course_through_django_user_tasks_names(
    client_for, staff, sample_course, bucket
):
    from plugin_app import runners

    client = client_for(staff)
    item, process_id = queued_task(staff)
    assert state_of(client, item) == {"state": "Pending"}
    claimed = lifecycle.claim_item(item.id)
    assert state_of(client, item) == {"state": "In Progress"}
    runners._release([claimed])  # a transient error gave it back: its task is delivered again
    assert state_of(client, item) == {"state": "Retrying"}
    runners.work_on_item(item.id)
    state = state_of(client, item)
    assert state["state"] == "Succeeded" and state["upload_key"].endswith(
        f"{process_id}/{SAMPLE_COURSE_ID}.tar.gz"
    )
    assert state["upload_url"].startswith("http")


def test_a_failed_export_answers_failed_with_its_reason(client_for, staff, sample_course, bucket):
    from plugin_app import runners

    item, _ = queued_task(staff)
    shutil.rmtree(sample_course)  # gone between the request and the worker
    runners.work_on_item(item.id)
    assert state_of(client_for(staff), item) == {"state": "Failed", "error": "Course not found."}


def test_a_canceled_export_answers_canceled(client_for, staff, sample_course, bucket):
    from plugin_app import api
    from plugin_app.data import ProcessKind

    item, process_id = queued_task(staff)
    api.cancel(staff, ProcessKind.EXPORT, process_id)
    state = state_of(client_for(staff), item)
    assert (
        state["state"] == "Canceled" and item.__class__.objects.get(id=item.id).status == ItemStatus.CANCELED
    )


def test_unknown_foreign_and_other_course_tasks_are_the_same_404(
    client_for, staff, author, sample_course, olx_root, bucket
):
    item, _ = queued_task(staff)
    other = copy_course(olx_root, "Other")
    task_id = str(item.task_id)
    not_found = {"detail": "Task not found"}
    for client, url in [
        (client_for(staff), task_url(SAMPLE_COURSE_ID, "5e0e8ad8-0000-4000-8000-000000000000")),  # unknown
        (client_for(staff), task_url(SAMPLE_COURSE_ID, "not-a-uuid")),
        (client_for(author), task_url(SAMPLE_COURSE_ID, task_id)),  # another user's task
        (client_for(staff), task_url(other, task_id)),  # another course's
    ]:
        response = client.get(url)
        assert (response.status_code, response.json()) == (404, not_found), url


def test_task_state_without_a_task_id_is_a_400_naming_it(client_for, staff, sample_course):
    response = client_for(staff).get(f"{EXPORT_URL}{SAMPLE_COURSE_ID}/")
    assert response.status_code == 400 and "task_id" in response.json()["developer_message"]


def test_task_state_needs_authentication(client_for, staff, sample_course):
    item, _ = queued_task(staff)
    assert client_for(None).get(task_url(SAMPLE_COURSE_ID, str(item.task_id))).status_code == 401


# Content versions ---------------------------------------------------------------------------


def versions_of(client, *course_ids):
    response = client.post(VERSIONS_URL, {"courses": list(course_ids)}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_versions_answer_the_anchors_shape(client_for, staff, sample_course):
    body = versions_of(client_for(staff), SAMPLE_COURSE_ID)
    assert body["missing"] == []
    entry = body["versions"][SAMPLE_COURSE_ID]
    assert set(entry) == {"published_version", "static_assets", "transcripts"}
    assert set(entry["static_assets"]) == {"count", "latest_upload", "latest_asset"}
    assert set(entry["transcripts"]) == {"count", "latest_modified"}
    # static/ holds handout.pdf, logo.png, intro.mp4, staff-notes.txt and the transcript intro-en.srt.
    assert (entry["static_assets"]["count"], entry["transcripts"]["count"]) == (4, 1)
    assert entry["static_assets"]["latest_asset"].startswith(
        "asset-v1:ExportBulk+Sample+2026+type@asset+block@"
    )
    assert entry["static_assets"]["latest_upload"].endswith("+00:00")


def test_versions_list_missing_ids_in_request_order(client_for, author, sample_course, olx_root):
    foreign = copy_course(olx_root, "Foreign")  # exists, but the author may not export it
    asked = [
        "nope",
        "library-v1:ExportBulk+Lib",
        SAMPLE_COURSE_ID,
        "course-v1:ExportBulk+Missing+2026",
        foreign,
    ]
    body = versions_of(client_for(author), *asked)
    assert list(body["versions"]) == [SAMPLE_COURSE_ID]
    assert body["missing"] == [
        "nope",
        "library-v1:ExportBulk+Lib",
        "course-v1:ExportBulk+Missing+2026",
        foreign,
    ]


@pytest.mark.parametrize(
    "courses", [[f"course-v1:X+Y+{i}" for i in range(201)], [], "course-v1:X+Y+Z", None, [3]]
)
def test_versions_refuse_more_than_200_ids_an_empty_list_and_a_non_list(
    client_for, staff, sample_course, courses
):
    response = client_for(staff).post(VERSIONS_URL, {"courses": courses}, format="json")
    assert response.status_code == 400 and "courses" in response.json()["developer_message"]


def test_versions_take_200_ids(client_for, staff, sample_course):
    ids = [SAMPLE_COURSE_ID, *(f"course-v1:X+Y+{i}" for i in range(199))]
    body = versions_of(client_for(staff), *ids)
    assert list(body["versions"]) == [SAMPLE_COURSE_ID] and len(body["missing"]) == 199


def change_xml(course):
    path = course / "html" / "welcome_html.html"
    path.write_text(path.read_text() + "<p>more</p>")


def add_static(course):
    (course / "static" / "new.css").write_text("p {}")


def replace_static(course):
    time.sleep(0.01)
    (course / "static" / "logo.png").write_bytes(b"another logo")


def remove_static(course):
    (course / "static" / "staff-notes.txt").unlink()


def change_transcript(course):
    time.sleep(0.01)
    path = course / "static" / "intro-en.srt"
    path.write_text(path.read_text() + "\n2\n00:00:02,000 --> 00:00:03,000\nBye\n")


@pytest.mark.parametrize(
    "change, field",
    [
        (change_xml, "published_version"),
        (add_static, "static_assets"),
        (replace_static, "static_assets"),
        (remove_static, "static_assets"),
        (change_transcript, "transcripts"),
    ],
)
def test_each_change_moves_its_own_field_only(client_for, staff, sample_course, change, field):
    client = client_for(staff)
    before = versions_of(client, SAMPLE_COURSE_ID)["versions"][SAMPLE_COURSE_ID]
    assert versions_of(client, SAMPLE_COURSE_ID)["versions"][SAMPLE_COURSE_ID] == before
    change(sample_course)
    after = versions_of(client, SAMPLE_COURSE_ID)["versions"][SAMPLE_COURSE_ID]
    assert {name for name in before if before[name] != after[name]} == {field}


def test_versions_need_authentication(client_for, sample_course):
    assert (
        client_for(None).post(VERSIONS_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json").status_code == 401
    )


# Fingerprints on olx_directory see what the export writes beyond blocks ----------------------


@pytest.mark.parametrize(
    "path, content",
    [
        ("tags.csv", "course_id,difficulty\ncourse-v1:ExportBulk+Sample+2026,Hard\n"),  # content tags
        ("static/intro-en.srt", "1\n00:00:00,000 --> 00:00:01,000\nChanged\n"),  # a VAL transcript
        ("video/intro_video.xml", None),  # VAL metadata written into <video_asset>
    ],
)
def test_olx_fingerprint_moves_with_tags_transcripts_and_video_metadata(
    sample_course, olx_root, path, content
):
    from plugin_app.backends.olx_directory import OlxDirectoryBackend

    backend = OlxDirectoryBackend(olx_root)
    key = CourseKey.from_string(SAMPLE_COURSE_ID)
    before = backend.fingerprint(key)
    other = copy_course(olx_root, "Other")  # an unrelated change: another course
    (sample_course / ".git").mkdir()  # and a folder the export skips
    (sample_course / ".git" / "HEAD").write_text("ref: x")
    assert backend.fingerprint(key) == before and backend.fingerprint(CourseKey.from_string(other))
    target = sample_course / path
    if content is None:
        asset = '<video_asset client_video_id="intro.mp4" duration="42.0" image=""/>'
        content = target.read_text().replace("<source ", f"{asset}\n  <source ", 1)
        assert content != target.read_text()
    target.write_text(content)
    assert backend.fingerprint(key) != before


# The standalone server's LMS-side paths -----------------------------------------------------


@pytest.fixture
def service_client(staff):
    from oauth2_provider.models import Application

    return Application.objects.create(
        name="pipeline", user=staff, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        client_type="confidential", authorization_grant_type="client-credentials",
    )  # fmt: skip


@pytest.mark.parametrize("path", ["/oauth2/access_token", "/oauth2/access_token/"])
def test_token_path_answers_with_and_without_the_slash(client, service_client, path):
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "token_type": "JWT"}  # fmt: skip
    response = client.post(path, form)
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "JWT" and response.json()["expires_in"] > 0


def test_me_answers_the_callers_username(client_for, staff):
    assert client_for(staff).get("/api/user/v1/me").json() == {"username": "staff"}
    assert client_for(None).get("/api/user/v1/me").status_code == 401


def test_course_list_takes_username_and_page_size_as_the_pipeline_sends_them(
    client_for, staff, author, olx_root
):
    copy_course(olx_root, "Other")
    url = "/api/courses/v1/courses/?username={}&page_size={}"
    body = client_for(staff).get(url.format("staff", 1)).json()
    assert len(body["results"]) == 1 and body["pagination"]["next"] and body["pagination"]["count"] == 2
    assert client_for(staff).get(url.format("author", 100)).status_code == 200  # staff may list another's
    assert client_for(author).get(url.format("staff", 100)).status_code == 403
    assert client_for(staff).get(url.format("nobody", 100)).status_code == 404
