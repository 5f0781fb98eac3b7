"""What the storage asks of S3 per export: as few requests as the object needs, and the latest
export a copy of a process's own object, made without reading it here."""

from __future__ import annotations

import io
import os

from opaque_keys.edx.keys import CourseKey

from plugin_app import storage
from plugin_app.export import export_course
from plugin_app.s3_writer import ChunkedBody
from tests.builders import SAMPLE_COURSE_ID


def _store(name: str, data: bytes) -> None:
    with storage.open_writer(name, "application/gzip") as out:
        out.write(data)


def _requests_of(client) -> list[str]:
    operations: list[str] = []
    client.meta.events.register("before-call.s3", lambda model, **kw: operations.append(model.name))
    return operations


def test_a_course_smaller_than_a_part_is_one_put_then_one_copy(bucket, olx_root):
    s3, bucket_name = bucket
    operations = _requests_of(storage.get_storage().client)

    name = export_course(CourseKey.from_string(SAMPLE_COURSE_ID), "p1")

    # No multipart upload for a few hundred KB; the HEAD finds no latest export to compare with.
    assert operations == ["PutObject", "HeadObject", "CopyObject"]
    stored = s3.get_object(Bucket=bucket_name, Key=name)
    assert stored["ContentType"] == "application/gzip"
    latest = s3.get_object(Bucket=bucket_name, Key=f"{SAMPLE_COURSE_ID}.tar.gz")["Body"].read()
    assert latest == stored["Body"].read()


def test_an_unchanged_course_is_not_copied_again_and_a_changed_one_is(bucket, olx_root):
    s3, bucket_name = bucket
    latest_key = f"{SAMPLE_COURSE_ID}.tar.gz"
    export_course(CourseKey.from_string(SAMPLE_COURSE_ID), "p1")
    first_copy = s3.head_object(Bucket=bucket_name, Key=latest_key)["LastModified"]
    operations = _requests_of(storage.get_storage().client)

    again = export_course(CourseKey.from_string(SAMPLE_COURSE_ID), "p2")

    assert operations == ["PutObject", "HeadObject", "HeadObject"]  # the same bytes: no copy
    assert s3.head_object(Bucket=bucket_name, Key=latest_key)["LastModified"] == first_copy
    assert s3.get_object(Bucket=bucket_name, Key=latest_key)["Body"].read() == _read(s3, bucket_name, again)

    (olx_root / "sample" / "about" / "overview.html").write_text("<p>Changed.</p>")
    operations.clear()
    changed = export_course(CourseKey.from_string(SAMPLE_COURSE_ID), "p3")

    assert operations[-1] == "CopyObject"
    assert s3.get_object(Bucket=bucket_name, Key=latest_key)["Body"].read() == _read(s3, bucket_name, changed)
    assert _read(s3, bucket_name, changed) != _read(s3, bucket_name, again)


def test_a_copy_in_s3_is_one_copy_object_request(bucket):
    s3, bucket_name = bucket
    _store("exports/p1/c.tar.gz", b"first export")
    _store("c.tar.gz", b"an older export")
    operations = _requests_of(storage.get_storage().client)

    storage.copy("exports/p1/c.tar.gz", "c.tar.gz", len(b"first export"))

    # One HEAD of the latest (another size: no need to look at the source), no transfer manager.
    assert operations == ["HeadObject", "CopyObject"]
    copied = s3.get_object(Bucket=bucket_name, Key="c.tar.gz")
    assert copied["Body"].read() == b"first export"
    assert copied["ContentType"] == "application/gzip"


def test_an_object_of_the_same_size_but_other_bytes_is_copied_over(bucket):
    s3, bucket_name = bucket
    _store("exports/p1/c.tar.gz", b"first export")
    _store("c.tar.gz", b"other export")  # same length

    storage.copy("exports/p1/c.tar.gz", "c.tar.gz", len(b"first export"))

    assert s3.get_object(Bucket=bucket_name, Key="c.tar.gz")["Body"].read() == b"first export"


def test_a_tarball_larger_than_a_part_is_a_multipart_upload(bucket, settings):
    s3, bucket_name = bucket
    settings.EXPORTBULK_UPLOAD_PART_BYTES = 5 * 1024 * 1024
    data = os.urandom(11 * 1024 * 1024)
    operations = _requests_of(storage.get_storage().client)

    with storage.open_writer("big.tar.gz", "application/gzip") as out:
        for start in range(0, len(data), 1024 * 1024):
            out.write(data[start : start + 1024 * 1024])

    assert operations == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
    assert s3.get_object(Bucket=bucket_name, Key="big.tar.gz")["Body"].read() == data


def _read(s3, bucket_name: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket_name, Key=key)["Body"].read()


def test_a_copy_on_disk_is_a_link_and_a_later_export_leaves_the_earlier_one_whole(local_storage):
    _store("exports/p1/c.tar.gz", b"first export")
    storage.copy("exports/p1/c.tar.gz", "c.tar.gz", 12)
    first, latest = local_storage / "exports/p1/c.tar.gz", local_storage / "c.tar.gz"
    assert os.path.samefile(first, latest)  # no second write of the bytes

    _store("exports/p2/c.tar.gz", b"second export")
    storage.copy("exports/p2/c.tar.gz", "c.tar.gz", 13)

    assert latest.read_bytes() == b"second export"
    assert first.read_bytes() == b"first export"
    assert not [name for name in os.listdir(local_storage) if name.startswith(".partial-")]


def test_a_body_of_chunks_reads_seeks_and_rereads_as_one_file():
    body = ChunkedBody([b"ab", memoryview(b"cdef"), b"", b"g"])

    assert len(body) == 7
    assert body.read(3) == b"abc" and body.read() == b"defg" and body.read(5) == b""
    assert body.seek(1) == 1 and body.read(2) == b"bc"
    assert body.seek(-2, io.SEEK_END) == 5 and body.read() == b"fg"
    assert body.seek(0) == 0 and body.read() == b"abcdefg"  # a retry reads it again


def test_a_writer_keeps_no_reference_to_a_buffer_its_caller_reuses(bucket):
    s3, bucket_name = bucket
    reused = bytearray(b"first bytes")
    with storage.open_writer("c.tar.gz", "application/gzip") as out:
        out.write(reused)
        reused[:] = b"other bytes"
        out.write(memoryview(b" and more"))

    assert _read(s3, bucket_name, "c.tar.gz") == b"first bytes and more"
