"""
Hostile input: every request below is refused with a clear error naming the row or field, and
leaves nothing half-written (no process row, no stored object, the course tree unchanged).

tests/test_upload_api.py covers the ordinary bad requests; this file adds what an attacker (or a
broken spreadsheet export) would send, and property-based tests of the manifest parser and the
ZIP validator.
"""

from __future__ import annotations

import contextlib
import csv
import io
import ntpath
import posixpath
import random
import stat
import struct
import tarfile
import time
import warnings
import zipfile

import pytest
import requests
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from opaque_keys.edx.keys import CourseKey

from plugin_app.backends.olx_directory import OlxDirectoryBackend
from plugin_app.content_zip import check_zip
from plugin_app.data import OlxTree, RowError, UploadMode
from plugin_app.export import ExportError, write_course
from plugin_app.manifest import ManifestRow, parse_manifest
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.row_checks import not_xml_char
from tests.builders import PROBLEM, content_zip, manifest
from tests.conftest import SAMPLE_COURSE_ID
from tests.test_export_api import EXPORT_URL, all_keys, tarball_keys
from tests.test_upload_api import GOOD_ROW, GOOD_ZIP, UPLOAD_URL, post_upload, report_rows, tree_digest

pytestmark = pytest.mark.django_db

HEADER = ["course_id", "file", "type", "display_name", "unit", "transcript"]


def stored_files(root) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def bucket_is_empty(s3, bucket_name: str) -> bool:
    uploads = s3.list_multipart_uploads(Bucket=bucket_name).get("Uploads", [])
    return all_keys(s3, bucket_name) == [] and uploads == []


def assert_refused(response, row, column, fragment) -> list[dict]:
    """A 400 envelope whose errors name the row and column; and no process was recorded."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["responseCode"] == "CLIENT_ERROR" and body["params"]["errmsg"]
    errors = body["result"]["errors"]
    assert any(e["row"] == row and e["column"] == column and fragment in e["message"] for e in errors), errors
    assert not BulkProcess.objects.exists() and not BulkItem.objects.exists()
    return errors


# ZIP: raw headers and hostile entries ---------------------------------------------------------

# Offsets of fields in a local file header ("PK\3\4") and a central directory entry ("PK\1\2").
VERSION, FLAGS, METHOD, CRC, SIZE = (4, 6), (6, 8), (8, 10), (14, 16), (22, 24)


def patch_zip(data: bytes, field: tuple[int, int], fmt: str, value: int) -> bytes:
    """The ZIP with one field overwritten in every entry's local header and central directory entry."""
    data = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", field[0]), (b"PK\x01\x02", field[1])):
        start = data.find(signature)
        while start >= 0:
            struct.pack_into(fmt, data, start + offset, value)
            start = data.find(signature, start + 4)
    return bytes(data)


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


SEEDED = random.Random(0)
INCOMPRESSIBLE = [SEEDED.randbytes(2000) for _ in range(3)]
TEXT_1_5_MIB = "".join(f"line {i}\n" for i in range(200_000)).encode()[: 3 * 512 * 1024]


@pytest.mark.parametrize(
    "case, zip_bytes, overrides, fragment",
    [
        ("parent inside a path", content_zip({**GOOD_ZIP, "a/../../x.pdf": b"x"}), {}, "'..'"),
        ("lone parent", content_zip({**GOOD_ZIP, "..": b"x"}), {}, "'..'"),
        ("backslash traversal", content_zip({**GOOD_ZIP, "..\\..\\evil.pdf": b"x"}), {}, "backslash"),
        ("backslash separator", content_zip({**GOOD_ZIP, "docs\\a2.pdf": b"x"}), {}, "backslash"),
        ("windows drive", content_zip({**GOOD_ZIP, "C:/evil.pdf": b"x"}), {}, "absolute"),
        ("symlinked folder", content_zip({**GOOD_ZIP, symlink("docs/"): b"/etc"}), {}, "symbolic link"),
        ("encrypted entry", patch_zip(content_zip(GOOD_ZIP), FLAGS, "<H", 0x1), {}, "encrypted"),
        (
            "unknown compression (AES)",
            patch_zip(content_zip(GOOD_ZIP), METHOD, "<H", 99),
            {},
            "unsupported compression method (99)",
        ),
        (
            "needs a newer ZIP version",
            patch_zip(content_zip(GOOD_ZIP), VERSION, "<H", 64),
            {},
            "not a valid ZIP",
        ),
        (
            "total uncompressed size",
            content_zip({**GOOD_ZIP, **{f"r{i}.bin": body for i, body in enumerate(INCOMPRESSIBLE)}}),
            {"EXPORTBULK_UPLOAD_MAX_UNCOMPRESSED_BYTES": 4096},
            "the limit is 4096",
        ),
        (
            "padded with junk",
            bytes(8192) + content_zip(GOOD_ZIP),
            {"EXPORTBULK_UPLOAD_MAX_UNCOMPRESSED_BYTES": 4096},
            "bytes; the limit is 4096",
        ),
        (
            "ratio limit is the setting's",
            content_zip({**GOOD_ZIP, "big.txt": TEXT_1_5_MIB}),
            {"EXPORTBULK_UPLOAD_MAX_COMPRESSION_RATIO": 2},
            "'big.txt' is compressed more than 2:1",
        ),
        (
            "bomb of many small entries",
            content_zip({**GOOD_ZIP, **{f"z{i}.bin": bytes(32 * 1024) for i in range(64)}}),
            {},
            "compressed more than 100:1 together",
        ),
    ],
)
def test_hostile_zip_is_refused_whole_and_stores_nothing(
    client_for, staff, sample_course, bucket, settings, case, zip_bytes, overrides, fragment
):
    """The manifest only names a.pdf: a hostile entry anywhere in the ZIP refuses the whole request."""
    for name, value in overrides.items():
        setattr(settings, name, value)
    before = tree_digest(sample_course)

    response = post_upload(client_for(staff), manifest([GOOD_ROW]), zip_bytes, "upload")

    assert_refused(response, None, "content", fragment)
    assert bucket_is_empty(*bucket)
    assert tree_digest(sample_course) == before


HTML = b"<p>hello, hostile world</p>" * 20


def _corrupt(field: tuple[int, int], value: int) -> bytes:
    return patch_zip(content_zip({"p.html": HTML}), field, "<I", value)


def _damaged_stream(method: int) -> bytes:
    """p.html compressed with ``method``, some bytes of its compressed data overwritten."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", method) as archive:
        archive.writestr("p.html", HTML)
    damaged = bytearray(data.getvalue())
    start = 30 + len("p.html")  # the local header, then the compressed data
    damaged[start + 4 : start + 12] = b"\xff" * 8
    return bytes(damaged)


@pytest.mark.parametrize(
    "case, zip_bytes",
    [
        ("bad CRC", _corrupt(CRC, 1234)),
        ("declared size too small", _corrupt(SIZE, 10)),
        ("damaged deflate stream", _damaged_stream(zipfile.ZIP_DEFLATED)),
        ("damaged bzip2 stream", _damaged_stream(zipfile.ZIP_BZIP2)),
        ("damaged lzma stream", _damaged_stream(zipfile.ZIP_LZMA)),
    ],
)
def test_corrupt_entry_read_before_link_is_a_row_error(
    client_for, staff, sample_course, local_storage, case, zip_bytes
):
    """Link mode reads html and problems up front: a corrupt entry is the row's error, not a 500."""
    before = tree_digest(sample_course)
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": "p.html", "unit": "A / B / C"}]

    response = post_upload(client_for(staff), manifest(rows), zip_bytes, "link")

    assert_refused(response, 2, "file", "cannot be read from the content ZIP")
    assert stored_files(local_storage) == []
    assert tree_digest(sample_course) == before


def test_corrupt_asset_fails_its_row_and_writes_no_partial_file(
    client_for, staff, sample_course, local_storage
):
    """Assets are not read before the task (only declared sizes are): a bad CRC fails that row, and the
    atomic write leaves no truncated file and no policy entry behind."""
    client = client_for(staff)
    before = tree_digest(sample_course)
    zip_bytes = patch_zip(content_zip({"a.pdf": b"%PDF-1.4 " * 50}), CRC, "<I", 1234)

    response = post_upload(client, manifest([GOOD_ROW]), zip_bytes, "upload")

    assert response.status_code == 200, response.content
    report = report_rows(client, response.json()["result"]["processId"])
    assert [(r["status"], r["asset_url"]) for r in report] == [("failed", "")]
    assert "Bad CRC-32" in report[0]["error"]
    assert tree_digest(sample_course) == before
    assert [p for p in stored_files(local_storage) if not p.endswith(".csv")] == []  # only the report


# CSV manifests ------------------------------------------------------------------------------

GOOD_MANIFEST = manifest([GOOD_ROW]).decode()


@pytest.mark.parametrize(
    "case, manifest_bytes, overrides, row, column, fragment",
    [
        ("UTF-16 with BOM", GOOD_MANIFEST.encode("utf-16"), {}, None, "file", "not UTF-8"),
        ("UTF-16 without BOM", GOOD_MANIFEST.encode("utf-16-le"), {}, None, "file", "NUL"),
        ("overlong UTF-8 '..'", b"course_id,file\n\xc0\xae\xc0\xae/x,a.pdf\n", {}, None, "file", "not UTF-8"),
        ("UTF-8 surrogate", b"course_id,file\n\xed\xa0\x80,a.pdf\n", {}, None, "file", "not UTF-8"),
        (
            "cell beyond the csv module's limit",
            manifest([{**GOOD_ROW, "display_name": "x" * 200_000}]),
            {},
            2,
            "file",
            "field larger than field limit",
        ),
        ("unterminated quote", b'course_id,file\n"a.pdf,a.pdf\n', {}, 2, "file", "not valid CSV"),
        ("BOM twice", b"\xef\xbb\xbf" + GOOD_MANIFEST.encode("utf-8-sig"), {}, 1, "course_id", "missing"),
        (
            "path traversal in a cell",
            manifest([{**GOOD_ROW, "file": "../../etc/passwd"}]),
            {},
            2,
            "file",
            "not in",
        ),
        (
            "manifest over the byte limit",
            manifest([GOOD_ROW] * 40),
            {"EXPORTBULK_UPLOAD_MAX_MANIFEST_BYTES": 1024},
            None,
            "file",
            "larger than 1024 bytes",
        ),
    ],
)
def test_hostile_manifest_is_refused_whole(
    client_for,
    staff,
    sample_course,
    local_storage,
    settings,
    case,
    manifest_bytes,
    overrides,
    row,
    column,
    fragment,
):
    """Encodings, CSV breakage and sizes from a broken export or an attacker: refused before any row runs."""
    for name, value in overrides.items():
        setattr(settings, name, value)
    before = tree_digest(sample_course)

    response = post_upload(client_for(staff), manifest_bytes, content_zip(GOOD_ZIP), "upload")

    assert_refused(response, row, column, fragment)
    assert stored_files(local_storage) == []
    assert tree_digest(sample_course) == before


def test_huge_manifest_is_refused_by_its_row_count_alone(client_for, staff, sample_course, local_storage):
    """Fifty times the default row limit: one error, not one per row (the rows are never checked)."""
    response = post_upload(client_for(staff), manifest([GOOD_ROW] * 50_000), content_zip(GOOD_ZIP), "upload")

    errors = assert_refused(response, None, "file", "has 50000 rows; the limit is 1000")
    assert len(errors) == 1
    assert stored_files(local_storage) == []


def test_wide_header_is_checked_in_linear_time(client_for, staff, sample_course, local_storage):
    """40,000 columns (well under the manifest byte limit) once took minutes: a quadratic duplicate scan."""
    header = [*HEADER, *(f"c{i}" for i in range(40_000)), "file"]
    started = time.monotonic()

    response = post_upload(client_for(staff), manifest([GOOD_ROW], header), content_zip(GOOD_ZIP), "upload")

    assert time.monotonic() - started < 5
    assert_refused(response, 1, "file", "appears twice")
    assert stored_files(local_storage) == []


def test_utf8_bom_and_crlf_from_excel_are_accepted(client_for, staff, sample_course, local_storage):
    """Excel's "CSV UTF-8" starts with a BOM and ends lines with CRLF: the first column is still course_id."""
    client = client_for(staff)
    manifest_bytes = GOOD_MANIFEST.encode("utf-8-sig")
    assert manifest_bytes.startswith(b"\xef\xbb\xbfcourse_id,") and b"\r\n" in manifest_bytes

    response = post_upload(client, manifest_bytes, content_zip(GOOD_ZIP), "upload")

    assert response.status_code == 200, response.content
    report = report_rows(client, response.json()["result"]["processId"])
    assert [(r["course_id"], r["file"], r["status"]) for r in report] == [
        (SAMPLE_COURSE_ID, "a.pdf", "success")
    ]


# Problem XML ----------------------------------------------------------------------------------


def _billion_laughs(levels: int = 9) -> bytes:
    """10**levels "lol"s from a few hundred bytes, if a parser ever expanded them."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels + 1)
    )
    return f"<!DOCTYPE problem [{entities}]>\n<problem>&lol{levels};</problem>".encode()


@pytest.mark.parametrize(
    "case, xml",
    [
        ("billion laughs, 9 levels", _billion_laughs()),
        (
            "external entity",
            b'<!DOCTYPE problem [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<problem><p>&xxe;</p></problem>',
        ),
        (
            "external parameter entity",
            b'<!DOCTYPE problem [<!ENTITY % ext SYSTEM "http://127.0.0.1:9/x.dtd"> %ext;]>\n<problem/>',
        ),
        ("external DTD", b'<!DOCTYPE problem SYSTEM "file:///etc/passwd">\n<problem/>'),
    ],
)
def test_problem_with_dtd_or_entities_is_refused(client_for, staff, sample_course, local_storage, case, xml):
    """Refused before parsing expands anything: fast, and nothing of /etc/passwd echoed back."""
    before = tree_digest(sample_course)
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": "p.xml", "unit": "A / B / C"}]

    response = post_upload(client_for(staff), manifest(rows), content_zip({"p.xml": xml}), "link")

    assert_refused(response, 2, "file", "DTDs or XML entities")
    assert b"root:" not in response.content
    assert stored_files(local_storage) == []
    assert tree_digest(sample_course) == before


# Report -------------------------------------------------------------------------------------

FORMULAS = ["=1+2", "+1+2", "-1+2", "@SUM(1,2)", "\t=1+2", "\r=1+2"]
HOSTILE_HEADER = '=HYPERLINK("http://evil.example","click")'


def test_report_neutralizes_every_formula_prefix_in_any_cell(client_for, staff, sample_course, local_storage):
    """OWASP's six prefixes, in a user cell, in an extra header and in a file name; plain cells unchanged."""
    client = client_for(staff)
    header = [*HEADER, HOSTILE_HEADER]
    rows = [
        {"course_id": SAMPLE_COURSE_ID, "file": f"f{i}.pdf", "display_name": formula, HOSTILE_HEADER: formula}
        for i, formula in enumerate(FORMULAS)
    ]
    rows += [{"course_id": SAMPLE_COURSE_ID, "file": "-minus.pdf", "display_name": "Plain"}]
    files = {row["file"]: b"%PDF" for row in rows}

    response = post_upload(client, manifest(rows, header), content_zip(files), "publish")

    assert response.status_code == 200, response.content
    report = report_rows(client, response.json()["result"]["processId"])
    assert list(report[0])[: len(header)] == [*HEADER, "'" + HOSTILE_HEADER]
    assert [r["status"] for r in report] == ["success"] * len(rows)
    assert [(r["display_name"], r["'" + HOSTILE_HEADER]) for r in report[:-1]] == [
        ("'" + formula, "'" + formula) for formula in FORMULAS
    ]
    assert (report[-1]["file"], report[-1]["display_name"]) == ("'-minus.pdf", "Plain")


# Export: course ids that try to leave the key prefix ------------------------------------------


class EveryCourseExistsBackend(OlxDirectoryBackend):
    """Says every course exists and exports the sample for it: hostile ids reach the storage naming."""

    def course_exists(self, course_key) -> bool:
        return True

    def export_olx(self, course_key):
        return super().export_olx(CourseKey.from_string(SAMPLE_COURSE_ID))


INVALID_KEYS = ["../x", "/abs/course", "%2e%2e%2f%2e%2e%2fx", "course-v1:ExportBulk+Sample+2026/../../x"]
# Old-style keys opaque_keys accepts, slashes and all.
SLASHED_KEYS = ["../../x", "..%2f..%2fx/a/b", "ExportBulk/Sample/2026"]
NAME_REFUSED = "The course id cannot be used as a storage object name."


@pytest.mark.parametrize("prefix", ["", "tenant-a/"])
@pytest.mark.parametrize(
    "backend, escape_error, exported",
    [
        ("olx_directory", "Course not found.", []),
        (f"{__name__}.EveryCourseExistsBackend", NAME_REFUSED, ["..%2f..%2fx/a/b", "ExportBulk/Sample/2026"]),
    ],
)
def test_course_ids_never_write_outside_the_key_prefix(
    client_for, staff, sample_course, bucket, settings, prefix, backend, escape_error, exported
):
    """The object key is <prefix><course id>.tar.gz: with the real backend hostile ids never match a course;
    with one that says every course exists, "../../x" must still be refused and slashed ids stay inside."""
    s3, bucket_name = bucket
    settings.EXPORTBULK_KEY_PREFIX = prefix
    settings.EXPORTBULK_COURSE_BACKEND = backend

    response = client_for(staff).post(EXPORT_URL, {"courses": INVALID_KEYS + SLASHED_KEYS}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert sorted(body["successful_uploads"]) == sorted(exported)
    assert {course: body["failed_uploads"][course] for course in INVALID_KEYS} == dict.fromkeys(
        INVALID_KEYS, "Invalid course key."
    )
    assert body["failed_uploads"]["../../x"] == escape_error
    keys = all_keys(s3, bucket_name)
    assert keys and all(key.startswith(prefix) and posixpath.normpath(key) == key for key in keys), keys
    assert not any(".." in key.split("/") for key in keys), keys
    assert sorted(tarball_keys(s3, bucket_name)) == sorted(f"{prefix}{course}.tar.gz" for course in exported)


def test_course_whose_url_name_is_dot_dot_is_not_exported_as_a_tar_slip(
    client_for, staff, olx_root, bucket, sample_course, monkeypatch
):
    """A run of ".." is a valid course key; as the tarball's top folder it would put every member in
    ../ (the olx_directory index does not serve it at all: ``policies/..`` leaves the folder)."""
    course = olx_root / "dots"
    (course / "course").mkdir(parents=True)
    (course / "course.xml").write_text('<course url_name=".." org="Dots" course="Dots"/>')
    (course / "course" / "...xml").write_text('<course display_name="Dots"/>')
    s3, bucket_name = bucket

    response = client_for(staff).post(
        EXPORT_URL, {"courses": ["course-v1:Dots+Dots+..", SAMPLE_COURSE_ID]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["failed_uploads"] == {"course-v1:Dots+Dots+..": "Course not found."}
    assert tarball_keys(s3, bucket_name) == [f"{SAMPLE_COURSE_ID}.tar.gz"]
    assert s3.list_multipart_uploads(Bucket=bucket_name).get("Uploads", []) == []
    data = requests.get(response.json()["successful_uploads"][SAMPLE_COURSE_ID], timeout=30).content
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert all(posixpath.normpath(name).split("/")[0] == "2026" for name in tar.getnames())
    # A backend that serves such a run (the modulestore's export names its folder by it) writes nothing.
    tree = OlxTree(path=course, root_name="..")
    monkeypatch.setattr(OlxDirectoryBackend, "export_olx", lambda self, key: contextlib.nullcontext(tree))
    with pytest.raises(ExportError, match=r"The course's url_name '\.\.' cannot name a folder\."):
        write_course(CourseKey.from_string("course-v1:Dots+Dots+.."), "dots.tar.gz")


# Oversized request bodies -------------------------------------------------------------------


def named(body: bytes, name: str) -> io.BytesIO:
    upload = io.BytesIO(body)
    upload.name = name
    return upload


def _padded_export(client):
    return client.post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID], "padding": "x" * 20_000}, format="json")


def _padded_upload(client):
    data = {
        "file": named(GOOD_MANIFEST.encode(), "manifest.csv"),
        "content": named(content_zip(GOOD_ZIP), "c.zip"),
    }
    return client.post(UPLOAD_URL, {**data, "mode": "upload", "padding": "x" * 20_000}, format="multipart")


@pytest.mark.parametrize("send", [_padded_export, _padded_upload], ids=["export JSON", "upload form field"])
def test_body_over_django_memory_limit_is_refused_and_nothing_starts(
    client_for, staff, sample_course, bucket, settings, send
):
    """Otherwise valid requests, padded past DATA_UPLOAD_MAX_MEMORY_SIZE: 413 before any work."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = tree_digest(sample_course)

    response = send(client_for(staff))

    assert response.status_code == 413
    answer = response.json()
    assert answer["error_code"] == "request_too_large"
    # JSON is refused by its declared length before reading (the message names size and limit);
    # the upload's form fields by Django while parsing.
    assert answer["developer_message"].endswith(
        ("bytes; the limit is 10000.", "The request body is too large.")
    )
    assert not BulkProcess.objects.exists()
    assert bucket_is_empty(*bucket)
    assert tree_digest(sample_course) == before


@pytest.mark.parametrize(
    "limit, extra_part",
    [
        ("DATA_UPLOAD_MAX_NUMBER_FILES", lambda: named(b"x", "x.bin")),
        ("DATA_UPLOAD_MAX_NUMBER_FIELDS", lambda: "x"),
    ],
    ids=["files", "fields"],
)
def test_too_many_form_parts_are_refused_with_a_message(
    client_for, staff, sample_course, local_storage, settings, limit, extra_part
):
    """Django's other request-size limits: the client should learn which one it hit, as for 413."""
    setattr(settings, limit, 3)
    data = {
        "file": named(GOOD_MANIFEST.encode(), "manifest.csv"),
        "content": named(content_zip(GOOD_ZIP), "c.zip"),
    }
    data.update({f"extra{i}": extra_part() for i in range(5)})

    response = client_for(staff).post(UPLOAD_URL, data, format="multipart", HTTP_OPERATION_MODE="upload")

    assert not BulkProcess.objects.exists() and stored_files(local_storage) == []
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json"), response.content[:200]
    assert response.json()["developer_message"]


# Property-based: the manifest parser --------------------------------------------------------

ZIP_NAMES = {"a.pdf", "docs/b.html", "p.xml", "clip.mp4", "clip.srt"}
CELLS = st.one_of(
    st.sampled_from(
        [
            SAMPLE_COURSE_ID,
            *sorted(ZIP_NAMES),
            "S / SS / U",
            "block-v1:ExportBulk+Sample+2026+type@vertical+block@u1",
            "html",
            "video",
            "=cmd",
            "..",
            "",
        ]
    ),
    st.text(max_size=30),
)


@st.composite
def csv_like(draw) -> bytes:
    """A manifest with the real header and cells that are sometimes valid, sometimes anything."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(draw(st.sampled_from([HEADER, HEADER[:2], ["File", "COURSE_ID", "file"]])))
    writer.writerows(draw(st.lists(st.lists(CELLS, max_size=7), max_size=6)))
    return text.getvalue().encode("utf-8", "surrogatepass") + draw(st.binary(max_size=20))


@given(
    raw=st.one_of(
        st.binary(max_size=500),
        st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
        csv_like(),
    ),
    mode=st.sampled_from(list(UploadMode)),
)
@example(raw=b",course_id,,file\n", mode=UploadMode.UPLOAD)  # unnamed columns, twice
@hypothesis_settings(max_examples=300, deadline=None)
def test_manifest_parser_answers_rows_or_row_errors_for_any_bytes(raw, mode):
    """Whatever the bytes, the view gets rows or row errors to show: never an exception (a 500)."""
    parsed, errors = parse_manifest(raw, mode, ZIP_NAMES, None)

    assert errors or parsed.rows
    for error in errors:
        assert isinstance(error, RowError) and error.message and error.column
        assert error.row is None or error.row >= 1
    if not errors:
        assert all(row.line >= 2 and row.file in ZIP_NAMES for row in parsed.rows)
        assert all(str(CourseKey.from_string(row.course_id)) == row.course_id for row in parsed.rows)


TYPE_OF = {".pdf": "pdf", ".png": "asset", ".html": "html", ".xml": "problem", ".mp4": "video"}
COURSES = [SAMPLE_COURSE_ID, "course-v1:Other+Course+Run"]
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
# What a valid cell may hold: text XML 1.0 can carry (titles and paths end up in OLX).
XML_TEXT = TEXT.filter(lambda text: not_xml_char(text) is None)


@st.composite
def valid_manifests(draw) -> tuple[bytes, set[str], list[ManifestRow]]:
    """A valid manifest written as spreadsheets do, and the rows it must parse to."""
    columns = draw(st.permutations(HEADER))
    header = [draw(st.sampled_from([c, c.upper(), c.title(), f" {c} "])) for c in columns]
    stems = draw(
        st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True), min_size=1, max_size=8, unique=True)
    )
    # csv.writer leaves a lone CR unquoted when lines end with LF alone: those files quote every cell.
    terminator, quoting = draw(
        st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\r\n", csv.QUOTE_ALL), ("\n", csv.QUOTE_ALL)])
    )
    # Spreadsheets write semicolons where the comma is the decimal mark, and tabs when asked.
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=terminator, quoting=quoting, delimiter=delimiter)
    writer.writerow(header)
    line, zip_names, expected = 1, set(), []
    for stem in stems:
        for _ in range(draw(st.integers(0, 2))):  # blank spreadsheet rows keep their numbers
            writer.writerow([])
            line += 1
        ext = draw(st.sampled_from(sorted(TYPE_OF)))
        file = draw(st.sampled_from(["", "docs/", "a/b/"])) + stem + ext
        transcript = f"{stem}.srt" if ext == ".mp4" and draw(st.booleans()) else ""
        display = draw(XML_TEXT)
        values = {
            "course_id": draw(st.sampled_from(COURSES)),
            "file": file,
            "type": draw(st.sampled_from(["", TYPE_OF[ext], TYPE_OF[ext].upper()])),
            "display_name": display,
            "unit": "S / SS / U",
            "transcript": transcript,
        }
        cells = [values[c] for c in columns]
        writer.writerow(cells)
        line += 1
        zip_names |= {file, transcript} - {""}
        expected.append(
            ManifestRow(
                line=line,
                course_id=values["course_id"],
                file=file,
                type=TYPE_OF[ext],
                display_name=display.strip() or posixpath.basename(file),
                unit="S / SS / U",
                transcript=transcript,
                cells=dict(zip([h.strip() for h in header], cells, strict=True)),
            )
        )
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig"]))
    return text.getvalue().encode(encoding), zip_names, expected


@given(case=valid_manifests(), mode=st.sampled_from(list(UploadMode)))
@hypothesis_settings(max_examples=150, deadline=None)
def test_valid_manifests_round_trip_with_spreadsheet_line_numbers(case, mode):
    """Any column order and header case, BOM or not, CRLF or LF, comma, semicolon or tab, blank rows,
    multi-line cells: each row comes back with its values and the row number a spreadsheet shows
    (what error messages cite)."""
    raw, zip_names, expected = case

    parsed, errors = parse_manifest(raw, mode, zip_names, None)

    assert errors == []
    assert parsed.rows == expected


# Property-based: the ZIP validator ----------------------------------------------------------

SEGMENTS = st.one_of(
    # "\x00x": zipfile cuts names at NUL, so this one reads back as "".
    st.sampled_from(["..", ".", "", "a", "C:", "~", "...", " ", "..\\..", "a\\b", "\u2025", "\uff0e\uff0e"]),
    st.just("\x00x"),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6),
)
ENTRY_NAMES = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["", "/", "//", "C:/", "\\"]),
    st.lists(SEGMENTS, min_size=1, max_size=4),
    st.sampled_from(["", "/"]),
).filter(bool)


def escapes(name: str) -> bool:
    """Independent oracle: would extracting ``name`` under a root leave it, on POSIX or on Windows?"""
    inside_posix = posixpath.normpath(posixpath.join("/root", name)).startswith("/root/")
    inside_windows = ntpath.normpath(ntpath.join("C:\\root", name)).startswith("C:\\root\\")
    return not (inside_posix and inside_windows) or ".." in name.replace("\\", "/").split("/")


@given(
    entries=st.lists(st.tuples(ENTRY_NAMES, st.booleans(), st.booleans()), min_size=1, max_size=6),
)
@hypothesis_settings(max_examples=250, deadline=None)
def test_zip_validator_accepts_only_names_inside_the_root(entries):
    """Accepted names stay under any extraction root; each escaping name or symlink is named in an error."""
    data = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(data, "w") as archive:
        warnings.simplefilter("ignore")  # duplicate names are part of the game
        for name, deflated, is_link in entries:
            info = symlink(name) if is_link else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
            archive.writestr(info, b"body")
    infos = zipfile.ZipFile(data).infolist()

    names, errors = check_zip(data)

    assert all(e.row is None and e.column == "content" and e.message for e in errors)
    files = [info.filename for info in infos if not info.filename.endswith("/")]  # is_dir(): 3.11 fails on ""
    assert names <= set(files)
    for name in names:
        assert not escapes(name), name
        assert posixpath.basename(name) not in ("", ".", "..")  # the asset name a row would store
    for info in infos:  # a request with any error is refused whole
        if escapes(info.filename) or stat.S_ISLNK(info.external_attr >> 16):
            assert any(repr(info.filename) in e.message for e in errors), (info.filename, errors)
    if not errors:
        assert names == set(files)


LINK_MANIFEST = manifest(
    [{"course_id": SAMPLE_COURSE_ID, "file": f, "unit": "A / B / C"} for f in ("p.xml", "b.html")]
)


@given(
    data=st.data(),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
)
@hypothesis_settings(max_examples=200, deadline=None)
def test_zip_validator_and_link_checks_survive_damaged_archives(data, method):
    """Random bytes, or a real ZIP with bytes overwritten: the validator, then link mode's reading of the
    html and problem it accepts, answer with errors, never an exception (a 500)."""
    original = io.BytesIO()
    with zipfile.ZipFile(original, "w", method) as archive:
        archive.writestr("p.xml", PROBLEM)
        archive.writestr("b.html", HTML)
    damaged = bytearray(original.getvalue())
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    truncated = st.integers(1, 60).map(lambda n: original.getvalue()[:-n])
    raw = data.draw(st.one_of(st.just(bytes(damaged)), truncated, st.binary(max_size=300)))

    names, errors = check_zip(io.BytesIO(raw))

    assert isinstance(names, set) and all(isinstance(e, RowError) and e.message for e in errors)
    if not errors:
        parsed, row_errors = parse_manifest(
            LINK_MANIFEST, UploadMode.LINK, names, zipfile.ZipFile(io.BytesIO(raw))
        )
        assert all(e.message for e in row_errors) and (row_errors or len(parsed.rows) == 2)
