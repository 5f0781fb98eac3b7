"""Export tarballs: compressed formats are stored in the gzip stream, everything else deflated, and
any gzip and tar reader gets the course back whole."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from plugin_app import archive
from plugin_app.archive import _header, entries, write_tarball
from plugin_app.data import OlxTree
from plugin_app.gzip_writer import STORE_FROM_BYTES, GzipWriter, already_compressed
from plugin_app.standalone.cli import SAMPLE_COURSES

PNG = b"\x89PNG\r\n\x1a\n"


def _gzip(chunks: list[tuple[bool, bytes]]) -> bytes:
    out = io.BytesIO()
    with GzipWriter(out, 1) as gz:
        for storing, data in chunks:
            gz.storing = storing
            gz.write(data)
    return out.getvalue()


def test_stored_bytes_are_not_deflated_and_the_stream_reads_back_whole():
    text, zeros = b"<problem>the same words</problem>\n" * 5000, bytes(300_000)

    stored = _gzip([(False, text), (True, zeros), (False, text)])
    deflated = _gzip([(False, text), (False, zeros), (False, text)])

    assert gzip.decompress(stored) == text + zeros + text
    assert zlib.decompress(stored, 16 + zlib.MAX_WBITS) == text + zeros + text  # zlib's reader too
    assert len(deflated) < 10_000  # zeros and repeated text deflate to almost nothing ...
    assert 300_000 < len(stored) < 320_000  # ... while stored, the zeros are there as they are


def test_a_stored_run_is_never_the_target_of_a_back_reference():
    # The text after the stored run repeats the text before it: a compressor that kept its
    # history across the run would point back past the stored bytes, and the reader would copy
    # the wrong ones.
    text = os.urandom(20_000)
    data = _gzip([(False, text), (True, os.urandom(70_000)), (False, text), (True, b""), (False, text)])

    assert gzip.decompress(data)[-20_000:] == text
    assert len(gzip.decompress(data)) == 130_000


@pytest.mark.parametrize(
    ("head", "compressed"),
    [
        (PNG, True),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", True),
        (b"\x00\x00\x00\x20ftypisom", True),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", True),
        (b"PK\x03\x04\x14\x00", True),
        (b"%PDF-1.7\n", False),  # often holds uncompressed streams
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", False),  # PCM audio
        (b"<?xml version=", False),
        (b"<svg xmlns=", False),
    ],
)
def test_compressed_formats_are_told_by_their_first_bytes(head, compressed):
    assert already_compressed(head) is compressed


@pytest.fixture
def course(tmp_path) -> Path:
    """The sample course with a large PNG (stored), a large text file read in several chunks, a
    name too long for a tar header's field, and an empty file."""
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE_COURSES / "sample", root)
    (root / "static" / "photo.png").write_bytes(PNG + os.urandom(STORE_FROM_BYTES * 3))
    (root / "static" / "notes.txt").write_bytes(b"a line of notes\n" * 200_000)  # 3.2 MB
    long_folder = root / "static" / ("a-folder-with-a-long-name-" * 3)
    long_folder.mkdir()
    (long_folder / ("and-a-file-with-a-long-name-" * 2 + ".txt")).write_text("long")
    (root / "static" / "empty.txt").write_bytes(b"")
    return root


def _tarball(course: Path) -> bytes:
    out = io.BytesIO()
    write_tarball(OlxTree(course, "course"), out, 1)
    return out.getvalue()


def _members(tarball: bytes) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else None for m in tar}  # type: ignore[union-attr]


def test_the_tarball_holds_every_file_and_folder_as_they_are(course):
    members = _members(_tarball(course))

    expected = {
        info.name: (Path(path).read_bytes() if info.isfile() else None)
        for info, path, _ in entries(course, "course")
    }
    assert members == expected
    assert len(members["course/static/photo.png"]) == STORE_FROM_BYTES * 3 + len(PNG)


def test_gnu_tar_and_gzip_read_the_tarball(course, tmp_path):
    if not shutil.which("tar") or not shutil.which("gzip"):
        pytest.skip("GNU tar and gzip are not installed")
    path = tmp_path / "course.tar.gz"
    path.write_bytes(_tarball(course))

    assert subprocess.run(["gzip", "-t", str(path)]).returncode == 0
    listed = subprocess.run(["tar", "-tzf", str(path)], capture_output=True, text=True, check=True)
    assert {name.rstrip("/") for name in listed.stdout.splitlines()} == {
        info.name for info, _, _ in entries(course, "course")
    }


def test_the_headers_are_those_tarfile_reads(course):
    for info, _path, _status in entries(course, "course"):
        header = _header(info)
        read = tarfile.TarInfo.frombuf(header[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
        if len(info.name) <= 99:  # longer names go through tarfile, as a GNU long-name entry
            assert len(header) == tarfile.BLOCKSIZE
            assert (read.name.rstrip("/"), read.size, read.mtime, read.mode, read.type) == (
                info.name,
                info.size,
                info.mtime,
                info.mode,
                info.type,
            )
            assert (read.uid, read.gid, read.uname, read.gname, read.linkname) == (0, 0, "", "", "")


def test_stored_files_make_the_export_cheaper_not_much_larger(course):
    tarball = _tarball(course)
    photo = STORE_FROM_BYTES * 3
    # The random PNG cannot shrink; stored, it costs five bytes per 64 KiB block beyond its size.
    assert photo < len(tarball) < photo + 200_000


def test_a_file_that_shrinks_while_it_is_exported_fails_the_export(course, monkeypatch):
    def shrinking(path, *args, **kwargs):
        if str(path).endswith("notes.txt"):
            Path(path).write_bytes(b"shorter")  # after its stat, before its read
        return open(path, *args, **kwargs)

    monkeypatch.setattr(archive, "open", shrinking, raising=False)
    with pytest.raises(OSError, match="changed while it was being exported"):
        _tarball(course)
