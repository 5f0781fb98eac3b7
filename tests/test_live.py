"""
End to end over HTTP: the REST client against the standalone server under gunicorn, a real
Celery worker on Redis, MariaDB (real migrations) and moto's S3 server.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests

from tests.builders import unit_children
from tests.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    FAST_RESUME,
    SAMPLE_COURSE_ID,
    SERVICE_PASSWORD,
    SERVICE_USER,
    edx_cleaner_errors,
)

pytestmark = pytest.mark.live


def test_token_flows_and_course_listing_across_pages(live):
    for token_type in ("jwt", "bearer"):
        client = live.client(token_type=token_type)
        assert SAMPLE_COURSE_ID in [c["id"] for c in client.list_all_courses()]
        assert list(client.export_courses([SAMPLE_COURSE_ID])["successful_uploads"]) == [SAMPLE_COURSE_ID]
    from tutor_exportbulk.client import OpenedxRESTAPIClient

    # The password grant goes through the application registered for it, never the service client.
    assert "unauthorized_client" in str(_token_error(live, CLIENT_ID))
    password_client = OpenedxRESTAPIClient(
        live.base_url,
        f"{CLIENT_ID}-password",
        CLIENT_SECRET,
        username=SERVICE_USER,
        password=SERVICE_PASSWORD,
    )
    assert SAMPLE_COURSE_ID in [c["id"] for c in password_client.list_all_courses(org="ExportBulk")]
    # The LMS pages by 10: with 12 courses the client must follow "next".
    for n in range(11):
        target = live.olx_root / f"copy{n}"
        if not target.exists():
            shutil.copytree(live.olx_root / "sample", target)
            pointer = (target / "course.xml").read_text().replace('org="ExportBulk"', f'org="Copy{n}"')
            (target / "course.xml").write_text(pointer)
    ids = [c["id"] for c in live.client().list_all_courses(page_size=5)]
    assert len(ids) == len(set(ids)) >= 12
    assert [c["id"] for c in live.client().list_all_courses(org="Copy3")] == ["course-v1:Copy3+Sample+2026"]


def test_bad_client_secret_is_refused(live):
    from tutor_exportbulk.client import OpenedxAPIError, OpenedxRESTAPIClient

    client = OpenedxRESTAPIClient(live.base_url, "exportbulk-test-client", "wrong-secret")
    with pytest.raises(OpenedxAPIError) as error:
        client.list_all_courses()
    assert error.value.status_code in (400, 401)
    assert "wrong-secret" not in str(error.value)


def test_async_export_runs_in_the_worker_and_reports_urls(live):
    client = live.client()
    answer = client.export_courses([SAMPLE_COURSE_ID, "course-v1:No+Such+Course"], async_=True)
    process_id = answer["processId"]
    statuses = list(client.wait(process_id, kind="export", interval=0.2, timeout=120))
    final = statuses[-1]
    assert final["status"] == "Completed"
    assert (final["totalCount"], final["successCount"], final["failedCount"]) == (2, 1, 1)
    url = final["successful_uploads"][SAMPLE_COURSE_ID]
    with tarfile.open(fileobj=io.BytesIO(requests.get(url, timeout=30).content), mode="r:gz") as tar:
        assert "2026/course.xml" in tar.getnames()
    assert final["failed_uploads"] == {"course-v1:No+Such+Course": "Course not found."}
    report = list(
        csv.DictReader(io.StringIO(requests.get(final["report"], timeout=30).content.decode("utf-8-sig")))
    )
    assert [(r["course_id"], r["status"]) for r in report] == [
        (SAMPLE_COURSE_ID, "success"),
        ("course-v1:No+Such+Course", "failed"),
    ]
    listed = client.export_status_list()
    assert process_id in [u["processId"] for u in listed["exports"]]


def test_bulk_upload_of_hundreds_of_mixed_rows_by_the_worker(live, tmp_path):
    course = live.olx_root / "sample"
    errors_before = edx_cleaner_errors(course)
    client = live.client()
    process_id = live.start_upload(tmp_path, 300, "Live Section / Live Subsection / Live Unit", client)

    seen = []
    for result in client.wait(process_id, kind="upload", interval=0.05, timeout=300):
        seen.append((result["successCount"], result["failedCount"], result["totalCount"]))
    final = result
    assert final["status"] == "Completed"
    assert (final["totalCount"], final["successCount"], final["failedCount"]) == (300, 300, 0)
    # Counts while polling never exceed the total and never go backwards.
    assert all(s + f <= t for s, f, t in seen)
    assert seen == sorted(seen)
    report = list(
        csv.DictReader(io.StringIO(requests.get(final["report"], timeout=30).content.decode("utf-8-sig")))
    )
    assert len(report) == 300 and {r["status"] for r in report} == {"success"}
    children = unit_children(course, "Live Unit")
    assert children == [r["usage_key"].rsplit("@", 1)[1] for r in report]
    assert edx_cleaner_errors(course) <= errors_before
    # The course still exports, with what was uploaded.
    export = client.export_courses([SAMPLE_COURSE_ID])
    url = export["successful_uploads"][SAMPLE_COURSE_ID]
    with tarfile.open(fileobj=io.BytesIO(requests.get(url, timeout=60).content), mode="r:gz") as tar:
        assert "2026/static/d3.pdf" in tar.getnames()


def test_killed_worker_is_replaced_and_the_process_completes_without_duplicates(live, tmp_path):
    course = live.olx_root / "sample"
    client = live.client()
    # A worker of our own whose unacknowledged task comes back quickly once it dies.
    live.stop_workers()
    live.start_worker(**FAST_RESUME)
    process_id = live.start_upload(tmp_path, 400, "Crash Section / Crash Subsection / Crash Unit", client)
    deadline = time.monotonic() + 120
    while client.upload_status(process_id)["successCount"] < 40:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live.kill_workers()
    midway = client.upload_status(process_id)
    assert midway["status"] == "Processing" and midway["successCount"] < 400

    live.start_worker(**FAST_RESUME)
    final = list(client.wait(process_id, kind="upload", interval=0.2, timeout=300))[-1]
    assert final["status"] == "Completed"
    assert (final["totalCount"], final["successCount"], final["failedCount"]) == (400, 400, 0)
    children = unit_children(course, "Crash Unit")
    assert len(children) == 400 == len(set(children))


def test_tutor_exportbulk_works_from_the_saved_tutor_config_alone(live, tmp_path):
    tutor = str(Path(sys.executable).parent / "tutor")
    env = {**live.env, "TUTOR_ROOT": str(tmp_path / "tutor"), "TUTOR_PLUGINS_ROOT": str(tmp_path / "plugins")}
    host = live.base_url.removeprefix("http://")

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([tutor, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        return result

    run("plugins", "enable", "exportbulk")
    run(
        "config",
        "save",
        "--set",
        f"LMS_HOST={host}",
        "--set",
        f"CMS_HOST={host}",
        "--set",
        "ENABLE_HTTPS=false",
        "--set",
        f"EXPORTBULK_OAUTH2_CLIENT_ID={CLIENT_ID}",
        "--set",
        f"EXPORTBULK_OAUTH2_CLIENT_SECRET={CLIENT_SECRET}",
    )
    courses = json.loads(run("exportbulk", "--json", "courses").stdout)
    assert SAMPLE_COURSE_ID in [c["id"] for c in courses]
    exported = json.loads(run("exportbulk", "--json", "export", SAMPLE_COURSE_ID).stdout)
    assert list(exported["successful_uploads"]) == [SAMPLE_COURSE_ID]


def _token_error(live, client_id: str) -> dict:
    form = {"grant_type": "password", "username": SERVICE_USER, "password": SERVICE_PASSWORD}
    answer = requests.post(
        f"{live.base_url}/oauth2/access_token/", data=form, auth=(client_id, CLIENT_SECRET), timeout=30
    )
    assert answer.status_code in (400, 401)
    return answer.json()
