"""
MIT's data pipeline (ol-data-platform ``OpenEdxApiClient`` and its course-export asset), replayed
call by call against the standalone server under gunicorn, with a real Celery worker on Redis,
MariaDB and moto's S3 server: the sequence a drop-in for the export anchor must answer.
"""

from __future__ import annotations

import io
import tarfile
import time
import urllib.parse

import pytest
import requests

from tests.conftest import CLIENT_ID, CLIENT_SECRET, SAMPLE_COURSE_ID, SERVICE_USER

pytestmark = pytest.mark.live

FAILURE_STATES = {"Failed", "Canceled", "Retrying"}  # the pipeline gives up on these


def pipeline_token(base_url: str) -> str:
    """Step 1: the token path without the trailing slash, client credentials, a JWT."""
    response = requests.post(
        f"{base_url}/oauth2/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_type": "JWT",
        },  # fmt: skip
        timeout=60,
        allow_redirects=False,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] > 0
    return body["access_token"]


@pytest.fixture(scope="module")
def waiting_server(live):
    """A second server of the stack (same database, broker, bucket and worker) configured for the
    pipeline: synchronous exports run on the worker, and the request waits at most 45 s."""
    from plugin_app.standalone.processes import free_port
    from tests.conftest import standalone_server

    port = free_port()
    env = {**live.env, "EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS": "45"}
    with standalone_server(env, port, live.root / "waiting-server.log", workers=1):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("server", ["default", "waiting"])
def test_the_pipelines_call_sequence_in_order(live, request, server):
    base_url = live.base_url if server == "default" else request.getfixturevalue("waiting_server")
    session = requests.Session()
    session.headers["Authorization"] = f"JWT {pipeline_token(base_url)}"
    # 2. Who am I.
    me = session.get(f"{base_url}/api/user/v1/me", timeout=60)
    assert me.status_code == 200 and me.json()["username"] == SERVICE_USER
    username = me.json()["username"]
    # 3. The courses, as the pipeline pages through them.
    url = f"{base_url}/api/courses/v1/courses/?username={username}&page_size=100"
    course_ids = []
    while url:
        page = session.get(url, timeout=60).json()
        course_ids += [course["id"] for course in page["results"]]
        url = page["pagination"]["next"]
    assert SAMPLE_COURSE_ID in course_ids
    # 4. Export one course (the pipeline waits 60 s for this answer).
    answer = session.post(
        f"{base_url}/api/courses/v0/export/", json={"courses": [SAMPLE_COURSE_ID]}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    task_id = body["upload_task_ids"][SAMPLE_COURSE_ID]
    # 5. Poll the task until it has succeeded (the pipeline polls every 20 s; 1 s here).
    status_url = f"{base_url}/api/courses/v0/export/{SAMPLE_COURSE_ID}/"
    deadline = time.monotonic() + 120
    while True:
        state = session.get(status_url, params={"task_id": task_id}, timeout=60).json()["state"]
        assert state not in FAILURE_STATES
        if state == "Succeeded":
            break
        assert time.monotonic() < deadline, state
        time.sleep(1)
    # 6. Map the URL back to a bucket and a key, then download with its own S3 credentials.
    upload_url = urllib.parse.urlparse(body["upload_urls"][SAMPLE_COURSE_ID])
    key = body["upload_keys"][SAMPLE_COURSE_ID]
    # On an S3-compatible endpoint (moto here, MinIO) the URL is path-style: the bucket is the
    # path's first segment, not the host's first label the pipeline reads on AWS (see README).
    assert upload_url.netloc.split(".")[0] != live.bucket
    bucket, _, path_key = upload_url.path[1:].partition("/")
    assert (bucket, path_key) == (live.bucket, key)  # the key as is, not percent-encoded
    data = live.s3.get_object(Bucket=bucket, Key=path_key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert "2026/course.xml" in tar.getnames()


def test_task_state_404s_over_http(live):
    session = requests.Session()
    session.headers["Authorization"] = f"JWT {pipeline_token(live.base_url)}"
    body = session.post(
        f"{live.base_url}/api/courses/v0/export/", json={"courses": [SAMPLE_COURSE_ID]}, timeout=60
    ).json()
    task_id = body["upload_task_ids"][SAMPLE_COURSE_ID]
    for course_id, asked in [
        (SAMPLE_COURSE_ID, "00000000-0000-4000-8000-000000000000"),
        ("course-v1:ExportBulk+Other+2026", task_id),
    ]:
        response = session.get(
            f"{live.base_url}/api/courses/v0/export/{course_id}/", params={"task_id": asked}
        )
        assert (response.status_code, response.json()) == (404, {"detail": "Task not found"})


def test_versions_over_http(live):
    session = requests.Session()
    session.headers["Authorization"] = f"JWT {pipeline_token(live.base_url)}"
    url = f"{live.base_url}/api/courses/v0/export/versions/"
    body = session.post(url, json={"courses": ["nope", SAMPLE_COURSE_ID]}, timeout=60).json()
    assert list(body["versions"]) == [SAMPLE_COURSE_ID] and body["missing"] == ["nope"]
    too_many = session.post(url, json={"courses": [f"course-v1:A+B+{i}" for i in range(201)]}, timeout=60)
    assert too_many.status_code == 400


def test_the_rest_client_reads_task_states_and_versions(live):
    client = live.client()
    answer = client.export_courses([SAMPLE_COURSE_ID])
    task_id = answer["upload_task_ids"][SAMPLE_COURSE_ID]
    state = client.export_task_state(SAMPLE_COURSE_ID, task_id)
    assert state["state"] == "Succeeded" and state["upload_key"] == answer["upload_keys"][SAMPLE_COURSE_ID]
    versions = client.content_versions([SAMPLE_COURSE_ID, "library-v1:ExportBulk+Lib"])
    assert list(versions["versions"]) == [SAMPLE_COURSE_ID]
    assert versions["missing"] == ["library-v1:ExportBulk+Lib"]


def test_every_task_state_with_the_real_worker(live):
    """With the worker stopped, tasks wait Pending; a canceled process's task answers Canceled, and
    a course gone before the worker takes it answers Failed once the worker is back."""
    import shutil

    client = live.client()
    doomed = live.olx_root / "doomed"
    shutil.copytree(live.olx_root / "sample", doomed)
    pointer = (doomed / "course.xml").read_text().replace('org="ExportBulk"', 'org="Doomed"')
    (doomed / "course.xml").write_text(pointer)
    doomed_id = SAMPLE_COURSE_ID.replace("ExportBulk", "Doomed")
    live.stop_workers()
    try:
        canceled = client.export_courses([SAMPLE_COURSE_ID], async_=True)
        failing = client.export_courses([doomed_id], async_=True)
        canceled_task = canceled["upload_task_ids"][SAMPLE_COURSE_ID]
        failing_task = failing["upload_task_ids"][doomed_id]
        assert client.export_task_state(SAMPLE_COURSE_ID, canceled_task) == {"state": "Pending"}
        client.cancel(canceled["processId"], kind="export")
        assert client.export_task_state(SAMPLE_COURSE_ID, canceled_task)["state"] == "Canceled"
        shutil.rmtree(doomed)  # gone between the request and the worker
    finally:
        live.start_worker()
    deadline = time.monotonic() + 120
    while (state := client.export_task_state(doomed_id, failing_task))["state"] != "Failed":
        assert state["state"] in ("Pending", "In Progress") and time.monotonic() < deadline, state
        time.sleep(1)
    assert state == {"state": "Failed", "error": "Course not found."}
