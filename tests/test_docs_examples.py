"""The README's example manifest and ZIP (docs/examples/) upload as the README says they do."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from tests.test_upload_api import STATUS_URL, post_upload, report_rows

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def test_example_manifest_names_exactly_the_files_of_the_example_zip():
    rows = list(csv.DictReader(io.StringIO((EXAMPLES / "manifest.csv").read_text("utf-8"))))
    named = {row["file"] for row in rows} | {row["transcript"] for row in rows if row["transcript"]}
    with zipfile.ZipFile(EXAMPLES / "content.zip") as archive:
        assert set(archive.namelist()) == named


def test_example_uploads_in_link_mode(client_for, staff, sample_course, local_storage):
    client = client_for(staff)
    manifest = (EXAMPLES / "manifest.csv").read_bytes()
    response = post_upload(client, manifest, (EXAMPLES / "content.zip").read_bytes(), "link")
    assert response.status_code == 200, response.content
    process_id = response.json()["result"]["processId"]
    result = client.get(STATUS_URL + process_id).json()["result"]
    assert (result["status"], result["successCount"], result["failedCount"]) == ("Completed", 5, 0)
    report = {row["file"]: row for row in report_rows(client, process_id)}
    assert report["handouts/Week 1 Readings.pdf"]["asset_name"] == "Week_1_Readings.pdf"
    assert report["images/Course logo (2026).png"]["asset_name"] == "Course_logo__2026_.png"
    assert all(row["usage_key"] for row in report.values())
