"""
The OpenAPI 3 schema (drf-spectacular) and schemathesis against the live standalone server.

Schemathesis generates valid and invalid requests for every operation of the schema the
server serves and checks each answer: never a 5xx, status code, content type and body as the
schema says, invalid input refused, no answer without credentials.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

OPERATIONS = {
    ("post", "/api/courses/v0/export/"),
    ("get", "/api/courses/v0/export/{course_id}/"),
    ("post", "/api/courses/v0/export/versions/"),
    ("get", "/api/courses/v0/export/status/list"),
    ("get", "/api/courses/v0/export/status/{process_id}"),
    ("post", "/api/courses/v0/content/bulk/upload"),
    ("get", "/api/courses/v0/content/bulk/upload/status/list"),
    ("get", "/api/courses/v0/content/bulk/upload/status/{process_id}"),
    ("get", "/api/courses/v0/processes/{process_id}"),
    ("get", "/api/courses/v0/storage/check"),
    ("post", "/api/courses/v0/restore/"),
    ("get", "/api/courses/v0/restore/status/list"),
    ("get", "/api/courses/v0/restore/status/{process_id}"),
    ("post", "/api/courses/v0/restore/status/{process_id}/cancel"),
    ("post", "/api/courses/v0/export/status/{process_id}/cancel"),
    ("post", "/api/courses/v0/content/bulk/upload/status/{process_id}/cancel"),
    ("get", "/api/courses/v0/exportbulk/files/{token}"),
    ("post", "/api/courses/v0/export/status/{process_id}/cancel"),
    ("post", "/api/courses/v0/content/bulk/upload/status/{process_id}/cancel"),
    ("post", "/api/courses/v0/backup/"),
    ("get", "/api/courses/v0/backup/status/list"),
    ("get", "/api/courses/v0/backup/status/{process_id}"),
    ("post", "/api/courses/v0/backup/status/{process_id}/cancel"),
    ("get", "/api/courses/v0/backup/versions/{course_id}"),
}
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance,negative_data_rejection,ignored_auth"
)


@pytest.mark.django_db
def test_schema_generates_without_a_warning(tmp_path):
    """drf-spectacular would fall back to guesses (and say so) for anything left unannotated."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/courses/v0/export/" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.live
def test_schema_documents_every_endpoint_of_the_app(live):
    schema = requests.get(f"{live.base_url}/api/courses/v0/schema/?format=json", timeout=30).json()
    assert schema["openapi"].startswith("3.")
    documented = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert documented == OPERATIONS
    export = schema["paths"]["/api/courses/v0/export/"]["post"]
    assert set(export["requestBody"]["content"]) == {"application/json"}
    assert {"200", "202", "400", "401", "403", "413", "429", "503"} <= set(export["responses"])
    assert "jwtAuth" in schema["components"]["securitySchemes"]


@pytest.mark.live
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(live, tmp_path: Path):
    token = live.client(token_type="jwt").access_token()
    command = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(command),
            "run",
            f"{live.base_url}/api/courses/v0/schema/?format=json",
            "--header",
            f"Authorization: JWT {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--seed",
            "20261123",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "60",
            "--generation-database",
            "none",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
