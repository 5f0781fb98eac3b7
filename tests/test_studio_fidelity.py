"""
What Studio does with real-world data, done the same here (olx_directory backend, API in-process):
asset names as Studio cleans them, old-style course keys, case-insensitive orgs, and a manifest
refused with every problem in one answer, whatever delimiter the spreadsheet wrote.
"""

from __future__ import annotations

import pytest
from opaque_keys.edx.locator import AssetLocator

from tests.builders import PNG, content_zip, manifest
from tests.conftest import SAMPLE_COURSE_ID
from tests.test_export_api import EXPORT_URL, copy_course
from tests.test_upload_api import STATUS_URL, assets_policy, post_upload, report_rows

pytestmark = pytest.mark.django_db

ASSET_PREFIX = "/asset-v1:ExportBulk+Sample+2026+type@asset+block@"
# File names as people make them, and the asset names Studio gives them.
REAL_NAMES = {
    "Week 1 Readings.pdf": "Week_1_Readings.pdf",
    "Screen Shot 2013-04-16 at 1.43.36 PM.png": "Screen_Shot_2013-04-16_at_1.43.36_PM.png",
    "Résumé (final).pdf": "Résumé__final_.pdf",
    "lecture-notes.v2.final.tar.gz": "lecture-notes.v2.final.tar.gz",
    "docs/Ünïcödé – draft.PDF": "Ünïcödé___draft.PDF",
}


def test_expected_names_are_opaque_keys_own_cleaning():
    """The table above is what opaque-keys' AssetLocator.clean_keeping_underscores makes of them."""
    for file, name in REAL_NAMES.items():
        assert AssetLocator.clean_keeping_underscores(file.rsplit("/", 1)[-1]) == name


def test_real_world_file_names_upload_under_studios_asset_names(
    client_for, staff, sample_course, local_storage
):
    client = client_for(staff)
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": file} for file in REAL_NAMES]
    zip_bytes = content_zip({file: f"%PDF bytes of {file}".encode() for file in REAL_NAMES})
    response = post_upload(client, manifest(rows), zip_bytes, "publish")
    assert response.status_code == 200, response.content

    report = report_rows(client, response.json()["result"]["processId"])
    assert [(r["status"], r["asset_name"], r["asset_url"]) for r in report] == [
        ("success", name, ASSET_PREFIX + name) for name in REAL_NAMES.values()
    ]
    policy = assets_policy(sample_course)
    for file, name in REAL_NAMES.items():
        display = file.rsplit("/", 1)[-1]
        # As a Studio export: policy under the asset name, file under its display name.
        assert policy[name]["displayname"] == display
        assert policy[name]["filename"] == ASSET_PREFIX.lstrip("/") + name
        assert (sample_course / "static" / display).read_bytes() == f"%PDF bytes of {file}".encode()


def test_names_that_clean_to_the_same_asset_clash(client_for, staff, sample_course, local_storage):
    rows = [
        {"course_id": SAMPLE_COURSE_ID, "file": "a b.pdf"},
        {"course_id": SAMPLE_COURSE_ID, "file": "a_b.pdf"},
    ]
    response = post_upload(
        client_for(staff), manifest(rows), content_zip({"a b.pdf": b"%PDF1", "a_b.pdf": b"%PDF2"})
    )
    assert response.status_code == 400
    (error,) = response.json()["result"]["errors"]
    assert error["row"] == 3 and "'a_b.pdf'" in error["message"] and "row 2" in error["message"]


def test_a_renamed_upload_replaces_the_asset_file(client_for, staff, sample_course, local_storage):
    client = client_for(staff)
    for file in ("a b.pdf", "a_b.pdf"):
        rows = [{"course_id": SAMPLE_COURSE_ID, "file": file}]
        assert (
            post_upload(client, manifest(rows), content_zip({file: b"%PDF " + file.encode()})).status_code
            == 200
        )
    assert not (sample_course / "static" / "a b.pdf").exists()  # one asset, one file: import sees no twin
    assert assets_policy(sample_course)["a_b.pdf"]["displayname"] == "a_b.pdf"


def test_link_mode_presents_the_asset_by_its_studio_name(client_for, staff, sample_course, local_storage):
    client = client_for(staff)
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": "My Logo (1).png", "unit": "S / SS / U"}]
    response = post_upload(client, manifest(rows), content_zip({"My Logo (1).png": PNG}), "link")
    assert response.status_code == 200, response.content
    (row,) = report_rows(client, response.json()["result"]["processId"])
    block_id = row["usage_key"].rsplit("@", 1)[1]
    assert '<img src="/static/My_Logo__1_.png"' in (sample_course / "html" / f"{block_id}.html").read_text()


def test_old_style_course_key_is_refused_with_a_row_error(client_for, staff, sample_course, local_storage):
    rows = [{"course_id": "ExportBulk/Sample/2026", "file": "a.pdf"}]
    response = post_upload(client_for(staff), manifest(rows), content_zip({"a.pdf": b"%PDF"}))
    assert response.status_code == 400
    (error,) = response.json()["result"]["errors"]
    assert (error["row"], error["column"]) == (2, "course_id")
    assert "old-style course" in error["message"]


def test_org_filter_is_case_insensitive(client_for, staff, olx_root, bucket):
    copy_course(olx_root, "HarvardX")
    response = client_for(staff).post(EXPORT_URL, {"org": "harvardx"}, format="json")
    assert response.status_code == 200, response.content
    assert list(response.json()["successful_uploads"]) == ["course-v1:HarvardX+Sample+2026"]


def test_every_error_is_in_one_answer_including_a_missing_course(
    client_for, staff, sample_course, local_storage
):
    rows = [
        {"course_id": SAMPLE_COURSE_ID, "file": "missing.pdf", "unit": "S / SS / U"},
        {"course_id": SAMPLE_COURSE_ID, "file": "a.pdf", "type": "podcast", "unit": "S / SS / U"},
        {"course_id": SAMPLE_COURSE_ID, "file": "a.pdf", "unit": "Only / Two"},
        {"course_id": "course-v1:No+Such+Course", "file": "a.pdf", "unit": "S / SS / U"},
    ]
    response = post_upload(client_for(staff), manifest(rows), content_zip({"a.pdf": b"%PDF"}), "link")
    assert response.status_code == 400
    errors = response.json()["result"]["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [
        (2, "file"),
        (3, "type"),
        (4, "unit"),
        (5, "course_id"),
    ]
    assert errors[3]["message"] == "Course course-v1:No+Such+Course not found."


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_manifests_are_read(client_for, staff, sample_course, local_storage, delimiter):
    text = delimiter.join(["course_id", "file", "display_name"]) + "\r\n"
    text += delimiter.join([SAMPLE_COURSE_ID, "a.pdf", "Notes, week 1"]) + "\r\n"
    client = client_for(staff)
    response = post_upload(client, text.encode("utf-8-sig"), content_zip({"a.pdf": b"%PDF"}), "publish")
    assert response.status_code == 200, response.content
    result = client.get(STATUS_URL + response.json()["result"]["processId"]).json()["result"]
    assert (result["status"], result["successCount"]) == ("Completed", 1)
