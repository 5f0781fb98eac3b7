"""
Secrets stay where they must: a full run against the live stack (successes, refusals, per-course
failures, a storage outage, a bulk upload and its report) with every log line, error body and
report collected, none of which may hold the AWS secret, the OAuth2 client secret or the service
user's password. Rendered Tutor files are checked in test_tutor_plugin.
"""

from __future__ import annotations

import logging

import pytest
import requests

from tests.builders import content_zip, manifest
from tests.conftest import CLIENT_ID, CLIENT_SECRET, SAMPLE_COURSE_ID, SECRET, SERVICE_PASSWORD
from tests.faults import SERVER_ERROR

pytestmark = pytest.mark.live

SECRETS = {"AWS secret": SECRET, "OAuth2 client secret": CLIENT_SECRET, "password": SERVICE_PASSWORD}


def test_no_secret_in_logs_error_bodies_or_reports(live, tmp_path, caplog):
    from tutor_exportbulk.client import OpenedxAPIError, OpenedxRESTAPIClient

    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    client = live.client()
    api = f"{live.base_url}/api/courses/v0"
    headers = {"Authorization": f"JWT {client.access_token()}"}

    def post(path: str, **kwargs) -> requests.Response:
        answer = requests.post(f"{api}{path}", headers=headers, timeout=60, **kwargs)
        bodies.append(answer.text)
        return answer

    # Refused credentials, through the token endpoint and through the client.
    for secret in ("wrong-" + CLIENT_SECRET, ""):
        answer = requests.post(
            f"{live.base_url}/oauth2/access_token/",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret},
            timeout=30,
        )
        assert answer.status_code in (400, 401)
        bodies.append(answer.text)
    with pytest.raises(OpenedxAPIError) as refused:
        OpenedxRESTAPIClient(live.base_url, CLIENT_ID, CLIENT_SECRET + "x").list_all_courses()
    bodies.append(str(refused.value))

    # An export with a course that does not exist, a malformed one, one during a storage outage.
    assert post("/export/", json={"courses": [SAMPLE_COURSE_ID, "course-v1:No+Such+1"]}).status_code == 400
    assert post("/export/", json={"courses": "nope"}).status_code == 400
    live.s3_proxy.rule = lambda method, query: SERVER_ERROR if method == "PUT" else None
    try:
        outage = post("/export/", json={"courses": [SAMPLE_COURSE_ID]})
    finally:
        live.s3_proxy.rule = None
    assert "Storage error" in outage.json()["failed_uploads"][SAMPLE_COURSE_ID]

    # A refused bulk upload, then one that runs, and its report.
    bad = manifest([{"course_id": "course-v1:No+Such+1", "file": "missing.pdf"}])
    refused_upload = post("/content/bulk/upload", files={"file": bad, "content": content_zip({})})
    assert refused_upload.status_code == 400
    process_id = live.start_upload(tmp_path, 10, "Secret Section / Secret Subsection / Secret Unit", client)
    final = list(client.wait(process_id, kind="upload", interval=0.2, timeout=120))[-1]
    assert final["status"] == "Completed"
    bodies.append(requests.get(final["report"], timeout=30).text)
    bodies.append(requests.get(f"{api}/content/bulk/upload/status/{process_id}", headers=headers).text)

    logs = {path.name: path.read_text(errors="replace") for path in live.root.glob("*.log")}
    assert "could not be stored" in logs["server.log"]  # the outage was logged, so logs were read
    sources = {**logs, "client and test logs": caplog.text, **{f"body {i}": b for i, b in enumerate(bodies)}}
    leaks = [
        (name, where) for where, text in sources.items() for name, value in SECRETS.items() if value in text
    ]
    assert leaks == []
