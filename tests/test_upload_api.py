"""The bulk upload API in-process (tasks run eagerly here; tests/test_live.py uses a real worker)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import stat
import uuid
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from plugin_app import api, storage
from plugin_app.models import BulkItem, BulkProcess
from tests.builders import PNG, PROBLEM, SRT, content_zip, manifest
from tests.conftest import SAMPLE_COURSE_ID
from tests.test_export_api import copy_course

pytestmark = pytest.mark.django_db

UPLOAD_URL = "/api/courses/v0/content/bulk/upload"
STATUS_URL = "/api/courses/v0/content/bulk/upload/status/"


def post_upload(client, manifest_bytes: bytes, zip_bytes: bytes | None, mode: str | None = "upload"):
    data = {"file": io.BytesIO(manifest_bytes)}
    data["file"].name = "manifest.csv"
    if zip_bytes is not None:
        data["content"] = io.BytesIO(zip_bytes)
        data["content"].name = "content.zip"
    headers = {"HTTP_OPERATION_MODE": mode} if mode else {}
    return client.post(UPLOAD_URL, data, format="multipart", **headers)


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


def report_rows(client, process_id: str) -> list[dict]:
    status = client.get(STATUS_URL + process_id).json()["result"]
    download = client.get(status["report"].replace("http://testserver", ""))
    text = b"".join(download.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def assets_policy(course: Path) -> dict:
    return json.loads((course / "policies" / "assets.json").read_text())


@pytest.mark.parametrize("mode, locked", [("upload", True), ("publish", False)])
def test_upload_and_publish_store_assets_locked_or_not(
    client_for, staff, sample_course, local_storage, mode, locked
):
    client = client_for(staff)
    rows = [
        {"course_id": SAMPLE_COURSE_ID, "file": "docs/syllabus.pdf"},
        {"course_id": SAMPLE_COURSE_ID, "file": "logo.png"},
    ]
    response = post_upload(
        client, manifest(rows), content_zip({"docs/syllabus.pdf": b"%PDF-1.4 x", "logo.png": PNG}), mode
    )

    assert response.status_code == 200, response.content
    process_id = response.json()["result"]["processId"]
    result = client.get(STATUS_URL + process_id).json()["result"]
    assert (result["status"], result["totalCount"], result["successCount"], result["failedCount"]) == (
        "Completed",
        2,
        2,
        0,
    )
    policy = assets_policy(sample_course)
    assert policy["syllabus.pdf"]["locked"] is locked and policy["logo.png"]["locked"] is locked
    assert (sample_course / "static" / "logo.png").read_bytes() == PNG
    report = report_rows(client, process_id)
    assert [r["status"] for r in report] == ["success", "success"]
    assert report[0]["asset_url"] == "/asset-v1:ExportBulk+Sample+2026+type@asset+block@syllabus.pdf"
    # The uploaded ZIP is not kept once its rows are done.
    assert not list(local_storage.rglob("*.zip"))


def test_link_mode_creates_published_components_in_new_and_existing_units(
    client_for, staff, sample_course, local_storage
):
    client = client_for(staff)
    new_unit = "Bulk Section / Bulk Subsection / Bulk Unit"
    rows = [
        {"course_id": SAMPLE_COURSE_ID, "file": "page.html", "display_name": "A page", "unit": new_unit},
        {"course_id": SAMPLE_COURSE_ID, "file": "quiz.xml", "display_name": "A quiz", "unit": new_unit},
        {"course_id": SAMPLE_COURSE_ID, "file": "clip.mp4", "unit": new_unit, "transcript": "clip.srt"},
        {"course_id": SAMPLE_COURSE_ID, "file": "notes.pdf", "display_name": "Notes", "unit": new_unit},
        {"course_id": SAMPLE_COURSE_ID, "file": "logo.png", "type": "asset", "unit": new_unit},
    ]
    files = {
        "page.html": b"<p>Hello</p>",
        "quiz.xml": PROBLEM,
        "clip.mp4": b"\x00\x00mp4",
        "clip.srt": SRT,
        "notes.pdf": b"%PDF-1.4",
        "logo.png": PNG,
    }
    response = post_upload(client, manifest(rows), content_zip(files), "link")
    assert response.status_code == 200, response.content
    process_id = response.json()["result"]["processId"]
    result = client.get(STATUS_URL + process_id).json()["result"]
    assert (result["status"], result["successCount"], result["failedCount"]) == ("Completed", 5, 0)

    report = report_rows(client, process_id)
    usage_keys = [r["usage_key"] for r in report]
    assert all(key.startswith("block-v1:ExportBulk+Sample+2026+type@") for key in usage_keys)
    unit_id = usage_keys and _unit_of(sample_course, usage_keys[0])
    unit = ElementTree.parse(sample_course / "vertical" / f"{unit_id}.xml").getroot()
    assert unit.get("display_name") == "Bulk Unit"
    assert [child.tag for child in unit] == ["html", "problem", "video", "html", "html"]
    block_ids = [key.rsplit("@", 1)[1] for key in usage_keys]
    assert [child.get("url_name") for child in unit] == block_ids
    assert (sample_course / "html" / f"{block_ids[0]}.html").read_text() == "<p>Hello</p>"
    problem = ElementTree.parse(sample_course / "problem" / f"{block_ids[1]}.xml").getroot()
    assert problem.get("display_name") == "A quiz"
    # The video as a Studio export has one with an uploaded transcript (the demo course's videos):
    # an edxval id, the transcript named after it in static/, and no asset of the .srt.
    video = ElementTree.parse(sample_course / "video" / f"{block_ids[2]}.xml").getroot()
    edx_video_id = video.get("edx_video_id")
    assert uuid.UUID(edx_video_id) and video.get("sub") == ""
    assert json.loads(video.get("transcripts")) == {"en": f"{edx_video_id}-en.srt"}
    assert [t.attrib for t in video.findall("video_asset/transcripts/transcript")] == [
        {"file_format": "srt", "language_code": "en", "provider": "Custom"}
    ]
    transcript = {"language": "en", "src": f"{edx_video_id}-en.srt"}
    assert [t.attrib for t in video.findall("transcript")] == [transcript]
    assert (sample_course / "static" / f"{edx_video_id}-en.srt").read_bytes() == SRT
    assert "clip.srt" not in assets_policy(sample_course)
    assert "/static/notes.pdf" in (sample_course / "html" / f"{block_ids[3]}.html").read_text()
    assert '<img src="/static/logo.png"' in (sample_course / "html" / f"{block_ids[4]}.html").read_text()


def test_a_batch_looks_over_the_course_folders_once_not_per_row(
    client_for, staff, sample_course, local_storage, monkeypatch
):
    """A standalone lookup checks every course folder; within a batch the course is held, so 40
    rows among 10 other courses cost a few such checks, not some per row (rows x courses)."""
    from plugin_app.backends import olx_directory

    for org in range(10):
        copy_course(sample_course.parent, f"Other{org}")
    checks = []
    look = olx_directory.course_folders
    monkeypatch.setattr(olx_directory, "course_folders", lambda root: checks.append(1) or look(root))
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": f"p{i}.html", "unit": "S / Sub / U"} for i in range(40)]
    files = {f"p{i}.html": b"<p>%d</p>" % i for i in range(40)}

    client = client_for(staff)
    response = post_upload(client, manifest(rows), content_zip(files), "link")
    assert response.status_code == 200, response.content
    status = client.get(STATUS_URL + response.json()["result"]["processId"]).json()["result"]
    assert (status["status"], status["successCount"]) == ("Completed", 40)
    assert len(list((sample_course / "html").glob("*.html"))) >= 40
    assert 0 < len(checks) < 10, len(checks)


def _unit_of(course: Path, usage_key: str) -> str:
    block_id = usage_key.rsplit("@", 1)[1]
    for vertical in (course / "vertical").glob("*.xml"):
        if any(child.get("url_name") == block_id for child in ElementTree.parse(vertical).getroot()):
            return vertical.stem
    raise AssertionError(f"{usage_key} is in no published unit")


def test_link_mode_into_draft_unit_publishes_it(client_for, staff, sample_course, local_storage):
    drafts = list((sample_course / "drafts" / "vertical").glob("*.xml"))
    assert drafts, "the sample course has a draft unit"
    draft_id = drafts[0].stem
    unit_key = f"block-v1:ExportBulk+Sample+2026+type@vertical+block@{draft_id}"
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": "page.html", "unit": unit_key}]
    response = post_upload(client_for(staff), manifest(rows), content_zip({"page.html": b"<p>x</p>"}), "link")
    assert response.status_code == 200
    assert not (sample_course / "drafts" / "vertical" / f"{draft_id}.xml").exists()
    published = ElementTree.parse(sample_course / "vertical" / f"{draft_id}.xml").getroot()
    assert published.get("parent_url") is None
    parents = [
        p
        for p in (sample_course / "sequential").glob("*.xml")
        if any(c.get("url_name") == draft_id for c in ElementTree.parse(p).getroot())
    ]
    assert len(parents) == 1


def test_restarted_upload_skips_finished_rows_and_duplicates_nothing(
    client_for, staff, sample_course, local_storage
):
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": f"p{i}.html", "unit": "S / SS / U"} for i in range(3)]
    files = {f"p{i}.html": f"<p>{i}</p>".encode() for i in range(3)}
    user = staff
    process_id = api.create_upload(user, manifest(rows), io.BytesIO(content_zip(files)), api.UploadMode.LINK)
    # A worker that died after the first row: the first row is done, the others pending.
    process = BulkProcess.objects.get(process_id=process_id)
    api.run_now(process_id)
    first = process.items.order_by("position").first()
    BulkItem.objects.filter(process=process).exclude(pk=first.pk).update(status="pending", finished_at=None)
    BulkProcess.objects.filter(pk=process.pk).update(status="Processing", report_name="")
    first_done = BulkItem.objects.get(pk=first.pk).finished_at
    # The content ZIP is deleted at the end of a run; after a real crash it is still there.
    process.refresh_from_db()
    with storage.open_writer(process.content_name, "application/zip") as out:
        out.write(content_zip(files))
    api.run_now(process_id)

    assert BulkItem.objects.get(pk=first.pk).finished_at == first_done  # not done again
    unit_files = [
        p
        for p in (sample_course / "vertical").glob("*.xml")
        if ElementTree.parse(p).getroot().get("display_name") == "U"
    ]
    assert len(unit_files) == 1
    children = [c.get("url_name") for c in ElementTree.parse(unit_files[0]).getroot()]
    assert len(children) == 3 == len(set(children))
    section_pointers = [
        c for c in ElementTree.parse(sample_course / "course" / "2026.xml").getroot() if c.tag == "chapter"
    ]
    titles = [
        ElementTree.parse(sample_course / "chapter" / f"{c.get('url_name')}.xml")
        .getroot()
        .get("display_name")
        for c in section_pointers
    ]
    assert titles.count("S") == 1


def test_report_neutralizes_formula_cells(client_for, staff, sample_course, local_storage):
    client = client_for(staff)
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": "a.pdf", "display_name": '=HYPERLINK("http://evil","x")'}]
    response = post_upload(client, manifest(rows), content_zip({"a.pdf": b"%PDF"}), "publish")
    report = report_rows(client, response.json()["result"]["processId"])
    assert report[0]["display_name"] == '\'=HYPERLINK("http://evil","x")'


def _zip_with_symlink() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        info = zipfile.ZipInfo("link.pdf")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return data.getvalue()


def _zip_bomb() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.pdf", b"\0" * (20 * 1024 * 1024))
    return data.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<problem><p>&lol2;</p></problem>"""
GOOD_ROW = {"course_id": SAMPLE_COURSE_ID, "file": "a.pdf"}
GOOD_ZIP = {"a.pdf": b"%PDF"}


@pytest.mark.parametrize(
    "case, manifest_bytes, zip_bytes, mode, row, column, fragment",
    [
        (
            "bad mode",
            manifest([GOOD_ROW]),
            content_zip(GOOD_ZIP),
            "explode",
            None,
            "operation-mode",
            "upload, publish",
        ),
        ("no zip", manifest([GOOD_ROW]), None, "upload", None, "content", "missing"),
        (
            "not utf-8",
            "course_id,file\n\xe9,a.pdf\n".encode("latin-1"),
            content_zip(GOOD_ZIP),
            "upload",
            None,
            "file",
            "not UTF-8",
        ),
        ("NUL", b"course_id,file\n\x00,a.pdf\n", content_zip(GOOD_ZIP), "upload", None, "file", "NUL"),
        (
            "missing column",
            manifest([GOOD_ROW], ["course_id", "name"]),
            content_zip(GOOD_ZIP),
            "upload",
            1,
            "file",
            "required column",
        ),
        ("no rows", manifest([]), content_zip(GOOD_ZIP), "upload", None, "file", "no rows"),
        (
            "too many rows",
            manifest([GOOD_ROW] * 6),
            content_zip(GOOD_ZIP),
            "upload",
            None,
            "file",
            "limit is 5",
        ),
        (
            "file not in zip",
            manifest([{**GOOD_ROW, "file": "b.pdf"}]),
            content_zip(GOOD_ZIP),
            "upload",
            2,
            "file",
            "not in the content ZIP",
        ),
        (
            "bad course key",
            manifest([{**GOOD_ROW, "course_id": "nope"}]),
            content_zip(GOOD_ZIP),
            "upload",
            2,
            "course_id",
            "not a valid course key",
        ),
        (
            "unknown course",
            manifest([{**GOOD_ROW, "course_id": "course-v1:X+Y+Z"}]),
            content_zip(GOOD_ZIP),
            "upload",
            2,
            "course_id",
            "not found",
        ),
        (
            "zip slip",
            manifest([GOOD_ROW]),
            content_zip({**GOOD_ZIP, "../../evil.pdf": b"x"}),
            "upload",
            None,
            "content",
            "'..'",
        ),
        (
            "dot segment",
            manifest([{**GOOD_ROW, "file": "docs/."}]),
            content_zip({**GOOD_ZIP, "docs/.": b"x"}),
            "upload",
            None,
            "content",
            "'.'",
        ),
        (
            "absolute path",
            manifest([GOOD_ROW]),
            content_zip({**GOOD_ZIP, "/etc/evil": b"x"}),
            "upload",
            None,
            "content",
            "absolute",
        ),
        (
            "symlink",
            manifest([{**GOOD_ROW, "file": "link.pdf"}]),
            _zip_with_symlink(),
            "upload",
            None,
            "content",
            "symbolic link",
        ),
        (
            "zip bomb",
            manifest([{**GOOD_ROW, "file": "bomb.pdf"}]),
            _zip_bomb(),
            "upload",
            None,
            "content",
            "ZIP bomb",
        ),
        ("not a zip", manifest([GOOD_ROW]), b"PK not really", "upload", None, "content", "not a valid ZIP"),
        (
            "entities",
            manifest([{**GOOD_ROW, "file": "p.xml", "unit": "A / B / C"}]),
            content_zip({"p.xml": BILLION_LAUGHS}),
            "link",
            2,
            "file",
            "entities",
        ),
        (
            "not a problem",
            manifest([{**GOOD_ROW, "file": "p.xml", "unit": "A / B / C"}]),
            content_zip({"p.xml": b"<html/>"}),
            "link",
            2,
            "file",
            "not a problem",
        ),
        ("link without unit", manifest([GOOD_ROW]), content_zip(GOOD_ZIP), "link", 2, "unit", "needs a unit"),
        (
            "bad unit",
            manifest([{**GOOD_ROW, "unit": "Only / Two"}]),
            content_zip(GOOD_ZIP),
            "link",
            2,
            "unit",
            "three non-empty parts",
        ),
        (
            "long cell",
            manifest([{**GOOD_ROW, "display_name": "x" * 2000}]),
            content_zip(GOOD_ZIP),
            "upload",
            2,
            "display_name",
            "longer than",
        ),
        (
            "asset clash",
            manifest([GOOD_ROW, {**GOOD_ROW, "file": "d/a.pdf"}]),
            content_zip({**GOOD_ZIP, "d/a.pdf": b"%PDF2"}),
            "upload",
            3,
            "file",
            "both be stored",
        ),
        (
            "bad type",
            manifest([{**GOOD_ROW, "type": "scorm"}]),
            content_zip(GOOD_ZIP),
            "upload",
            2,
            "type",
            "not one of",
        ),
    ],
)
def test_bad_upload_is_refused_whole_and_creates_nothing(
    client_for,
    staff,
    sample_course,
    local_storage,
    settings,
    case,
    manifest_bytes,
    zip_bytes,
    mode,
    row,
    column,
    fragment,
):
    settings.EXPORTBULK_UPLOAD_MAX_ROWS = 5
    settings.EXPORTBULK_UPLOAD_MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
    before = tree_digest(sample_course)

    response = post_upload(client_for(staff), manifest_bytes, zip_bytes, mode)

    assert response.status_code == 400, case
    body = response.json()
    assert body["params"]["err"] in ("INVALID_MANIFEST", "INVALID_REQUEST")
    assert body["responseCode"] == "CLIENT_ERROR"
    assert body["params"]["errmsg"]
    matching = [e for e in body["result"]["errors"] if e["row"] == row and e["column"] == column]
    assert any(fragment in e["message"] for e in matching), body["result"]["errors"]
    assert not BulkProcess.objects.exists()
    assert not local_storage.exists() or not [p for p in local_storage.rglob("*") if p.is_file()]
    assert tree_digest(sample_course) == before


def test_upload_lists_every_row_error_at_once(client_for, staff, sample_course, local_storage):
    rows = [{"course_id": "bad", "file": "a.pdf"}, {"course_id": SAMPLE_COURSE_ID, "file": "missing.pdf"}]
    response = post_upload(client_for(staff), manifest(rows), content_zip(GOOD_ZIP), "upload")
    errors = response.json()["result"]["errors"]
    assert {(e["row"], e["column"]) for e in errors} == {(2, "course_id"), (3, "file")}


def test_upload_to_course_without_write_access_is_refused(client_for, author, olx_root, local_storage):
    from tests.test_export_api import copy_course

    foreign = copy_course(olx_root, "Other")
    rows = [GOOD_ROW, {"course_id": foreign, "file": "a.pdf"}]
    response = post_upload(client_for(author), manifest(rows), content_zip(GOOD_ZIP), "upload")
    assert response.status_code == 400
    errors = response.json()["result"]["errors"]
    assert errors == [
        {"row": 3, "column": "course_id", "message": f"You do not have Studio write access to {foreign}."}
    ]
    assert not BulkProcess.objects.exists()


def test_status_of_unknown_or_foreign_process_is_not_found(
    client_for, staff, stranger, sample_course, local_storage
):
    response = post_upload(client_for(staff), manifest([GOOD_ROW]), content_zip(GOOD_ZIP), "upload")
    process_id = response.json()["result"]["processId"]
    for user, pid in [(stranger, process_id), (staff, "0" * 32), (staff, "not-a-uuid")]:
        answer = client_for(user).get(STATUS_URL + pid)
        assert answer.status_code == 404
        body = answer.json()
        assert body["params"]["err"] == "PROCESS_NOT_FOUND"
        assert body["responseCode"] == "RESOURCE_NOT_FOUND"
        assert body["result"] == {}
    # Nor can the stranger see it in a list, or read it as an export.
    assert client_for(stranger).get(STATUS_URL + "list").json()["result"]["uploads"] == []
    assert client_for(staff).get("/api/courses/v0/export/status/" + process_id).status_code == 404


def test_status_list_is_newest_first_and_paginated(client_for, staff, sample_course, local_storage):
    client = client_for(staff)
    ids = [
        post_upload(client, manifest([GOOD_ROW]), content_zip(GOOD_ZIP), "upload").json()["result"][
            "processId"
        ]
        for _ in range(3)
    ]
    first = client.get(STATUS_URL + "list?page_size=2").json()
    assert first["id"] == "api.bulkupload.status.list"
    assert first["result"]["userId"] == staff.id
    assert [u["processId"] for u in first["result"]["uploads"]] == ids[::-1][:2]
    assert first["result"]["uploads"][0]["status"] == "Completed"
    second = client.get(first["result"]["next"].replace("http://testserver", "")).json()
    assert [u["processId"] for u in second["result"]["uploads"]] == ids[:1]
    assert second["result"]["next"] is None
