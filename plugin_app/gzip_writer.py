"""
A gzip stream (RFC 1952, one member) that stores what is already compressed instead of deflating
it again.

Most of a course's bytes are images, videos and PDFs whose formats are compressed already:
deflate gains them a few per cent at the cost of most of an export's CPU (ISA-L level 1: about
60 % of the time of a course of 20 MB, profiled in bench/RESULTS.md). Like rsync's
``--skip-compress`` and zip's stored entries, their bytes go into the stream as deflate's stored
blocks, in the same member as the rest: any gzip reader (Python's ``tarfile``, GNU ``tar``,
Studio's import) reads it as usual. The switch flushes the compressor with ``Z_FULL_FLUSH``, which
aligns it to a byte and forgets its history, so that no back-reference crosses a stored run.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from isal import isal_zlib

# A file is looked at only from this size up: below it, deflating costs little.
STORE_FROM_BYTES = 64 * 1024
# The first bytes of formats whose content is compressed (images, audio, video, archives, fonts).
_COMPRESSED_SIGNATURES = (
    b"\x89PNG",
    b"\xff\xd8\xff",  # JPEG
    b"GIF8",
    b"PK\x03\x04",  # zip, docx, xlsx, pptx, epub, odt
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",  # zstd
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!",
    b"\x1a\x45\xdf\xa3",  # WebM, Matroska
    b"OggS",
    b"fLaC",
    b"ID3",  # MP3
    b"wOFF",
    b"wOF2",
)
_SIGNATURE_BYTES = 12
_STORED_BLOCK = 65535  # the most a stored block holds
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, unknown OS


def already_compressed(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 12 bytes) is in a compressed format."""
    return (
        head.startswith(_COMPRESSED_SIGNATURES)
        or head[4:8] == b"ftyp"  # MP4, MOV, M4A, HEIC, AVIF
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")  # MP3 without a tag
    )


def read_signature(source: BinaryIO) -> bytes:
    """The first bytes of an open file, which is left at its start."""
    head = source.read(_SIGNATURE_BYTES)
    source.seek(0)
    return head


class GzipWriter:
    """A write-only file that gzips what is written into ``out``; while ``storing`` is set, bytes
    go in as stored blocks. ``close`` ends the stream (it does not close ``out``)."""

    def __init__(self, out: BinaryIO, level: int):
        self._out, self._crc, self._size = out, 0, 0
        self._deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
        self._storing = False
        out.write(_HEADER)

    @property
    def storing(self) -> bool:
        return self._storing

    @storing.setter
    def storing(self, value: bool) -> None:
        if value and not self._storing:
            self._out.write(self._deflate.flush(isal_zlib.Z_FULL_FLUSH))
        self._storing = value

    def write(self, data: bytes) -> int:
        self._crc = isal_zlib.crc32(data, self._crc)
        self._size += len(data)
        if self._storing:
            # Block headers and views of ``data``: the bytes are not copied here (see S3Writer).
            view = memoryview(data)
            for start in range(0, len(view), _STORED_BLOCK):
                block = view[start : start + _STORED_BLOCK]
                self._out.write(struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF))  # not final
                self._out.write(block)
        else:
            compressed = self._deflate.compress(data)
            if compressed:
                self._out.write(compressed)
        return len(data)

    def tell(self) -> int:
        """Bytes written so far, uncompressed (what ``tarfile`` counts its offsets in)."""
        return self._size

    def flush(self) -> None:
        """Nothing is held back but what the compressor needs to see more of."""

    def close(self) -> None:
        self._out.write(self._deflate.flush(isal_zlib.Z_FINISH))
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))

    def __enter__(self) -> GzipWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:  # after a failure the stream is abandoned, not completed
            self.close()
