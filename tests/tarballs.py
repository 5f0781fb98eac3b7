"""Course tarballs for restore tests, hostile ones included, built in memory (no Django)."""

from __future__ import annotations

import io
import os
import tarfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

COURSE_XML = b'<course url_name="2026" org="Evil" course="T"/>'
ROOT_XML = b'<course display_name="T"><chapter url_name="c1"/></course>'
CHAPTER_XML = b'<chapter display_name="C"/>'


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    for field, value in fields.items():
        setattr(info, field, value)
    tar.addfile(info, io.BytesIO(data) if data else None)


def course_tarball(extra: Callable[[tarfile.TarFile], None] | None = None, top: str = "t",
                   course_xml: bytes = COURSE_XML, root_xml: bytes = ROOT_XML) -> bytes:  # fmt: skip
    """A small valid course under ``top/``, plus whatever ``extra`` adds."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        _add(tar, top, type=tarfile.DIRTYPE, mode=0o755)
        _add(tar, f"{top}/course.xml", course_xml)
        _add(tar, f"{top}/course/2026.xml", root_xml)
        _add(tar, f"{top}/chapter/c1.xml", CHAPTER_XML)
        if extra:
            extra(tar)
    return out.getvalue()


def big_course_tarball(size: int) -> tuple[bytes, bytes]:
    """A valid course whose ``static/noise.bin`` holds ``size`` random bytes (gzip cannot shrink
    them: the tarball is as big), and those bytes."""
    noise = os.urandom(size)
    return course_tarball(lambda tar: _add(tar, "t/static/noise.bin", noise)), noise


def fan_out_tarball(width: int = 45) -> bytes:
    """Under 500 bytes: a chapter pointing ``width`` times at one sequential, which points ``width``
    times at one vertical, which points ``width`` times at one html (45: 91,125 blocks to build)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        _add(tar, "t/course.xml", b'<course url_name="2026" org="Fan" course="F"/>')
        _add(tar, "t/course/2026.xml", b'<course display_name="F"><chapter url_name="c"/></course>')
        for parent, tag, child in (("chapter/c", "chapter", "sequential"), ("sequential/s", "sequential",
                                   "vertical"), ("vertical/v", "vertical", "html")):  # fmt: skip
            pointer = f'<{child} url_name="{child[0]}"/>'.encode()
            _add(tar, f"t/{parent}.xml", f"<{tag}>".encode() + pointer * width + f"</{tag}>".encode())
        _add(tar, "t/html/h.xml", b'<html filename="h"/>')
        _add(tar, "t/html/h.html", b"<p>x</p>")
    return out.getvalue()


def tree_tarball(folder: Path, top: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(folder, arcname=top)
    return out.getvalue()


def gzip_bomb(size: int = 256 * 1024**2) -> bytes:
    """A tarball of one member of ``size`` zero bytes: about a thousandth of that compressed."""
    header = tarfile.TarInfo("t/static/zeros.bin")
    header.size = size
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(header.tobuf(format=tarfile.GNU_FORMAT))]
    block = bytes(16 * 1024 * 1024)
    for _ in range(size // len(block)):
        parts.append(packer.compress(block))
    parts.append(packer.flush())
    return b"".join(parts)


def many_members(count: int = 1_000_000) -> bytes:
    """A tarball of ``count`` empty files, headers written directly (tarfile takes a minute for this)."""
    template = bytearray(tarfile.TarInfo("t/m0000000").tobuf(format=tarfile.USTAR_FORMAT))
    template[148:156] = b" " * 8
    base = sum(template) - sum(b"0000000")
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts, batch = [], []
    for i in range(count):
        digits = b"%07d" % i
        template[3:10] = digits
        template[148:156] = b"%06o\x00 " % (base + sum(digits))
        batch.append(bytes(template))
        if len(batch) == 10_000:
            parts.append(packer.compress(b"".join(batch)))
            batch = []
    parts.append(packer.compress(b"".join(batch) + bytes(1024)))
    parts.append(packer.flush())
    return b"".join(parts)


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE course [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<course url_name="2026" org="Evil" course="T">&xxe;</course>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<course url_name="2026" org="Evil" course="T">&lol3;</course>"""


def hostile_tarballs(heavy: bool = True) -> dict[str, tuple[bytes, str]]:
    """Every hostile tarball tried: name -> (bytes, a phrase the refusal must contain); ``heavy``
    adds the two that take seconds to build (the gzip bomb and the million members)."""

    def member(name: str, **fields) -> Callable[[tarfile.TarFile], None]:
        return lambda tar: _add(tar, name, b"x" if not fields else b"", **fields)

    whole = course_tarball()
    tarballs = {
        "dotdot": (course_tarball(member("t/../../evil.txt")), "'t/../../evil.txt' contains '..'"),
        "leading dotdot": (course_tarball(member("../evil.txt")), "contains '..'"),
        "absolute": (course_tarball(member("/tmp/evil.txt")), "'/tmp/evil.txt' is an absolute path"),
        "drive letter": (course_tarball(member("C:/evil.txt")), "'C:/evil.txt' is an absolute path"),
        "backslash": (course_tarball(member("t\\..\\..\\evil.txt")), "contains a backslash"),
        "symlink": (course_tarball(member("t/static/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")),
                    "is a symbolic link"),
        "hard link": (course_tarball(member("t/static/passwd", type=tarfile.LNKTYPE, linkname="/etc/passwd")),
                      "is a hard link (to '/etc/passwd')"),
        "char device": (course_tarball(member("t/static/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)),
                        "is a device node"),
        "block device": (course_tarball(member("t/static/sda", type=tarfile.BLKTYPE, devmajor=8)),
                         "is a device node"),
        "fifo": (course_tarball(member("t/static/pipe", type=tarfile.FIFOTYPE)), "is a FIFO"),
        "no course.xml": (_without_course_xml(), "holds no course.xml"),
        "two top folders": (course_tarball(member("u/other.xml")), "2 top folders"),
        "file beside the top folder": (course_tarball(member("loose.txt")), "outside the tarball's top"),
        "XXE": (course_tarball(course_xml=XXE), "course.xml is refused"),
        "billion laughs": (course_tarball(course_xml=BILLION_LAUGHS), "course.xml is refused"),
        "truncated gzip": (whole[: len(whole) // 2], "truncated"),
        "not gzip": (b"PK\x03\x04 this is a zip", "not a gzip-compressed tar"),
    }  # fmt: skip
    if heavy:
        tarballs["gzip bomb"] = (gzip_bomb(), "compressed more than")
        tarballs["a million empty members"] = (many_members(), "more than 10000 members")
    return tarballs


def _without_course_xml() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        _add(tar, "t/course/2026.xml", ROOT_XML)
    return out.getvalue()
