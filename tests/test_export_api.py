"""The bulk export API in the request (sync mode), against moto's S3 server over HTTP."""

from __future__ import annotations

import io
import json
import re
import tarfile
import urllib.parse
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests

from plugin_app.models import BulkProcess
from tests.conftest import SAMPLE_COURSE_ID, edx_cleaner_errors, shared_course_params
from tests.faults import (
    DROP,
    SERVER_ERROR,
    THROTTLED,
    Fault,
    FaultProxy,
    FaultRule,
    is_upload_part,
    once_per_key,
)

pytestmark = pytest.mark.django_db

EXPORT_URL = "/api/courses/v0/export/"


def source_files(course_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(course_dir)): p.read_bytes() for p in course_dir.rglob("*") if p.is_file()}


def tarball_files(data: bytes) -> tuple[set[str], dict[str, bytes]]:
    """Top-level names and {path below the top folder: bytes} of a .tar.gz."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in members if m.isfile()}
    return tops, files


def all_keys(s3, bucket_name: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name).get("Contents", [])]


def tarball_keys(s3, bucket_name: str) -> list[str]:
    """The courses' latest exports (each process's own copies live under exports/<process>/)."""
    return [key for key in all_keys(s3, bucket_name) if key.endswith(".tar.gz") and "exports/" not in key]


def copy_course(olx_root: Path, org: str) -> str:
    """Another course: the sample under another org; returns its id."""
    import shutil

    target = olx_root / f"copy-{org}"
    shutil.copytree(olx_root / "sample", target)
    pointer = (target / "course.xml").read_text().replace('org="ExportBulk"', f'org="{org}"')
    (target / "course.xml").write_text(pointer)
    return f"course-v1:{org}+Sample+2026"


def test_export_uploads_studio_layout_tarball_with_presigned_url(
    client_for, staff, sample_course, bucket, settings
):
    s3, bucket_name = bucket
    response = client_for(staff).post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["failed_uploads"] == {}
    url = response.json()["successful_uploads"][SAMPLE_COURSE_ID]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(settings.EXPORTBULK_URL_EXPIRY_SECONDS)]
    assert "X-Amz-Signature" in query
    download = requests.get(url, timeout=30)
    assert download.status_code == 200
    tops, files = tarball_files(download.content)
    assert tops == {"2026"}  # Studio's layout: one folder named after the course's url_name
    assert files == source_files(sample_course)
    head = s3.head_object(Bucket=bucket_name, Key=f"{SAMPLE_COURSE_ID}.tar.gz")
    assert head["ContentType"] == "application/gzip"
    assert "ContentEncoding" not in head  # or HTTP clients would gunzip the download


def test_tarball_holds_the_course_only_without_links_vcs_folders_or_owners(
    client_for, staff, sample_course, bucket
):
    s3, bucket_name = bucket
    expected = source_files(sample_course)
    (sample_course / "static" / "passwd.txt").symlink_to("/etc/passwd")
    (sample_course / "outside").symlink_to("/etc", target_is_directory=True)
    (sample_course / ".git").mkdir()
    (sample_course / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    response = client_for(staff).post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json")

    assert response.status_code == 200, response.content
    data = s3.get_object(Bucket=bucket_name, Key=f"{SAMPLE_COURSE_ID}.tar.gz")["Body"].read()
    assert tarball_files(data)[1] == expected
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert {m.type for m in members} == {tarfile.DIRTYPE, tarfile.REGTYPE}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    names = [m.name for m in members]
    assert names[0] == "2026" and names.index("2026/course.xml") > 0  # folders before what they hold


def test_export_partial_failure_keeps_successes(client_for, author, olx_root, bucket):
    s3, bucket_name = bucket
    foreign = copy_course(olx_root, "Other")
    courses = [SAMPLE_COURSE_ID, "course-v1:ExportBulk+Missing+2026", "not-a-course-key", foreign]

    response = client_for(author).post(EXPORT_URL, {"courses": courses}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert list(body["successful_uploads"]) == [SAMPLE_COURSE_ID]
    failed = body["failed_uploads"]
    assert failed["not-a-course-key"] == "Invalid course key."
    # The author may not author the missing course either: a stranger learns nothing of existence.
    assert failed["course-v1:ExportBulk+Missing+2026"].startswith("Permission denied")
    assert failed[foreign].startswith("Permission denied")
    assert tarball_keys(s3, bucket_name) == [f"{SAMPLE_COURSE_ID}.tar.gz"]


def test_export_of_missing_course_tells_staff_it_is_not_found(client_for, staff, olx_root, bucket):
    response = client_for(staff).post(
        EXPORT_URL, {"courses": ["course-v1:ExportBulk+Missing+2026"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "processId": BulkProcess.objects.get().process_id.hex,  # for its report
        "successful_uploads": {},
        "failed_uploads": {"course-v1:ExportBulk+Missing+2026": "Course not found."},
        # Refused at request time: no task was made (the anchor's keys, empty).
        "upload_urls": {},
        "upload_task_ids": {},
        "upload_keys": {},
        "pending_uploads": [],
    }


def test_export_public_bucket_answers_plain_object_urls(client_for, staff, sample_course, bucket, settings):
    s3, bucket_name = bucket
    public_read = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket_name}/*",
    }
    s3.put_bucket_policy(
        Bucket=bucket_name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public_read]})
    )
    settings.EXPORTBULK_PUBLIC_URLS = True
    response = client_for(staff).post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json")
    url = response.json()["successful_uploads"][SAMPLE_COURSE_ID]
    assert "X-Amz-Signature" not in url and "?" not in url
    key = rf"/{bucket[1]}/exports/[0-9a-f]{{32}}/{re.escape(SAMPLE_COURSE_ID)}\.tar\.gz$"
    assert re.search(key, urllib.parse.unquote(url))
    assert requests.get(url, timeout=30).status_code == 200


def test_export_key_prefix_and_template(client_for, staff, sample_course, bucket, settings):
    s3, bucket_name = bucket
    settings.EXPORTBULK_KEY_PREFIX = "backups/nightly/"
    settings.EXPORTBULK_EXPORT_KEY_TEMPLATE = "olx/{course_id}.tar.gz"
    response = client_for(staff).post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json")
    assert response.status_code == 200
    assert tarball_keys(s3, bucket_name) == [f"backups/nightly/olx/{SAMPLE_COURSE_ID}.tar.gz"]
    assert all(key.startswith("backups/nightly/") for key in all_keys(s3, bucket_name))


def test_export_by_org_selects_only_authorable_courses(client_for, author, olx_root, bucket):
    copy_course(olx_root, "Other")
    response = client_for(author).post(EXPORT_URL, {"org": "ExportBulk"}, format="json")
    assert response.status_code == 200
    assert list(response.json()["successful_uploads"]) == [SAMPLE_COURSE_ID]
    response = client_for(author).post(EXPORT_URL, {"org": "Other"}, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "no_courses"


def test_export_all_exports_every_course_for_staff(client_for, staff, olx_root, bucket):
    other = copy_course(olx_root, "Other")
    response = client_for(staff).post(EXPORT_URL, {"all": True}, format="json")
    assert response.status_code == 200
    assert set(response.json()["successful_uploads"]) == {SAMPLE_COURSE_ID, other}


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("not json", "JSON parse error"),
        ({}, "exactly one of"),
        ({"courses": SAMPLE_COURSE_ID}, "courses"),
        ({"courses": []}, "courses"),
        ({"courses": [12]}, "Not a string"),
        ({"courses": [SAMPLE_COURSE_ID, SAMPLE_COURSE_ID]}, "Duplicate course ids"),
        ({"courses": [f"course-v1:A+B+{i}" for i in range(4)]}, "at most 3"),
        ({"courses": [SAMPLE_COURSE_ID], "org": "ExportBulk"}, "exactly one of"),
        ([SAMPLE_COURSE_ID], "JSON object"),
    ],
)
def test_export_malformed_body_is_refused_and_nothing_exported(
    client_for, staff, sample_course, bucket, settings, body, fragment
):
    s3, bucket_name = bucket
    settings.EXPORTBULK_MAX_COURSES_PER_REQUEST = 3
    client = client_for(staff)
    if isinstance(body, str):
        response = client.post(EXPORT_URL, body, content_type="application/json")
    else:
        response = client.post(EXPORT_URL, body, format="json")
    assert response.status_code == 400
    assert fragment in response.json()["developer_message"]
    assert "error_code" in response.json()
    assert s3.list_objects_v2(Bucket=bucket_name).get("KeyCount") == 0
    assert not BulkProcess.objects.exists()


def test_export_requires_authentication(client_for, sample_course, bucket, staff):
    from tests.conftest import jwt_for

    assert (
        client_for(None).post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json").status_code == 401
    )
    expired = client_for(None)
    expired.credentials(HTTP_AUTHORIZATION=f"JWT {jwt_for(staff, expires_in=-60)}")
    assert expired.post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json").status_code == 401
    garbage = client_for(None)
    garbage.credentials(HTTP_AUTHORIZATION="JWT not.a.token")
    assert garbage.post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json").status_code == 401
    assert not BulkProcess.objects.exists()


def test_export_to_local_storage_serves_signed_expiring_urls(
    client_for, staff, sample_course, local_storage, settings
):
    response = client_for(staff).post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json")
    url = response.json()["successful_uploads"][SAMPLE_COURSE_ID]
    assert url.startswith("http://testserver/api/courses/v0/exportbulk/files/")
    path = urllib.parse.urlsplit(url).path
    download = client_for(None).get(path)
    assert download.status_code == 200
    _, files = tarball_files(b"".join(download.streaming_content))
    assert files == source_files(sample_course)
    assert client_for(None).get(path[:-3] + "xyz").status_code == 404  # tampered signature
    settings.EXPORTBULK_URL_EXPIRY_SECONDS = -1
    assert client_for(None).get(path).status_code == 404  # expired
    assert not list(local_storage.rglob(".partial-*"))


def _on_parts(fault: Fault, part: str | None = None) -> FaultRule:
    """``fault`` on every UploadPart request (or only on part number ``part``)."""
    return lambda method, query: (
        fault if is_upload_part(method, query) and part in (None, *query["partNumber"]) else None
    )


def _on_complete(method: str, query: dict) -> Fault | None:
    return SERVER_ERROR if method == "POST" and "uploadId" in query else None


@pytest.fixture
def big_course(sample_course, settings) -> Path:
    """The sample course with 20 MiB of incompressible data: its tarball takes three 8 MiB parts."""
    import os

    settings.EXPORTBULK_UPLOAD_PART_BYTES = 8 * 1024 * 1024
    (sample_course / "static" / "big.bin").write_bytes(os.urandom(20 * 1024 * 1024))
    return sample_course


def _export_through(proxy_rule: FaultRule, client, moto_endpoint, settings):
    with FaultProxy(moto_endpoint, proxy_rule) as proxy:
        settings.EXPORTBULK_S3_ENDPOINT_URL = proxy.url
        response = client.post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json")
    settings.EXPORTBULK_S3_ENDPOINT_URL = moto_endpoint
    return response, proxy


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(once_per_key(_on_parts(SERVER_ERROR)), id="500 once per part"),
        pytest.param(once_per_key(_on_parts(THROTTLED)), id="503 SlowDown once per part"),
        pytest.param(once_per_key(_on_parts(DROP)), id="connection dropped once per part"),
        pytest.param(_on_parts(Fault(delay=0.5)), id="slow answers to every part"),
        pytest.param(once_per_key(_on_complete), id="500 once on completion"),
    ],
)
def test_transient_storage_faults_are_retried_and_the_export_is_whole(
    client_for, staff, big_course, bucket, settings, moto_endpoint, rule
):
    s3, bucket_name = bucket
    response, proxy = _export_through(rule, client_for(staff), moto_endpoint, settings)

    assert response.status_code == 200, response.json()
    assert sum(proxy.faults.values()) >= 1
    (key,) = tarball_keys(s3, bucket_name)
    _, files = tarball_files(s3.get_object(Bucket=bucket_name, Key=key)["Body"].read())
    assert files == source_files(big_course)
    assert s3.list_multipart_uploads(Bucket=bucket_name).get("Uploads", []) == []


@pytest.mark.parametrize(
    "fault", [pytest.param(f, id=f.code if f.status else "drop") for f in (SERVER_ERROR, THROTTLED, DROP)]
)
def test_persistent_storage_fault_midway_fails_the_course_and_leaves_no_object(
    client_for, staff, big_course, bucket, settings, moto_endpoint, fault
):
    s3, bucket_name = bucket
    response, proxy = _export_through(_on_parts(fault, part="2"), client_for(staff), moto_endpoint, settings)

    assert response.status_code == 400
    reason = response.json()["failed_uploads"][SAMPLE_COURSE_ID]
    assert reason.startswith("Storage error")
    assert "test-secret" not in reason
    assert sum(proxy.faults.values()) == 4  # the first attempt and 3 retries (storage.py), then it gives up
    assert tarball_keys(s3, bucket_name) == []
    assert s3.list_multipart_uploads(Bucket=bucket_name).get("Uploads", []) == []


def test_without_the_shared_courses_the_skip_says_where_they_were_looked_for(monkeypatch, tmp_path):
    from tests import conftest

    monkeypatch.setattr(conftest, "SHARED_OLX", tmp_path / "olx")
    (param,) = conftest.shared_course_params()
    (mark,) = param.marks
    assert mark.name == "skip" and f"{tmp_path / 'olx'} is missing" in mark.kwargs["reason"]


@pytest.mark.parametrize("course", shared_course_params())
def test_real_open_edx_course_exports_unchanged(client_for, staff, olx_root, bucket, course):
    import shutil

    shutil.copytree(course, olx_root / course.name)
    pointer = ElementTree.parse(course / "course.xml").getroot()
    course_id = f"course-v1:{pointer.get('org')}+{pointer.get('course')}+{pointer.get('url_name')}"

    response = client_for(staff).post(EXPORT_URL, {"courses": [course_id]}, format="json")

    assert response.status_code == 200, response.content
    data = requests.get(response.json()["successful_uploads"][course_id], timeout=60).content
    tops, files = tarball_files(data)
    assert tops == {pointer.get("url_name")}
    assert files == source_files(course)
    extracted = olx_root.parent / "extracted"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(extracted, filter="data")
    assert edx_cleaner_errors(extracted / pointer.get("url_name")) <= edx_cleaner_errors(course)


def test_export_by_a_stranger_fails_every_course_and_writes_nothing(
    client_for, stranger, sample_course, bucket
):
    s3, bucket_name = bucket
    response = client_for(stranger).post(EXPORT_URL, {"courses": [SAMPLE_COURSE_ID]}, format="json")
    assert response.status_code == 400
    assert response.json()["successful_uploads"] == {}
    assert response.json()["failed_uploads"][SAMPLE_COURSE_ID].startswith("Permission denied")
    assert tarball_keys(s3, bucket_name) == []
