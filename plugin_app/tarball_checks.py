"""
A course tarball from outside, unpacked into a fresh folder while every check runs.

One streamed pass: gzip, tar and the files written are a pipeline, so neither the tarball nor a
member is ever whole in memory. Only regular files and folders are written, under names checked
first; the uncompressed size and the compression ratio are counted on the bytes actually
decompressed (tar headers lie), and the pass stops as soon as a limit is crossed. A text file
(XML, HTML, JSON, CSV: what is parsed or rewritten; ``static/`` keeps its bytes) larger than
``EXPORTBULK_RESTORE_MAX_TEXT_FILE_BYTES`` is refused before a byte of it is written. Then what
the platform reads is checked (``olx_checks``: XML, paths that leave the course, course.xml,
policies); only a tree that passes is shown to olxcleaner (``olx_validation``).
Problems are collected, not raised, so that an item reports all of them together.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from django.conf import settings
from isal import igzip

from plugin_app.files import unsafe_relative_path
from plugin_app.olx_checks import TEXT_SUFFIXES, course_problems, xml_problems

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_CHUNK = 1024 * 1024
# Below this many uncompressed bytes a high compression ratio costs nothing worth refusing.
_RATIO_FLOOR = 16 * 1024 * 1024
# Problems listed per item; a hostile tarball can have thousands.
_MAX_PROBLEMS = 20


class _Refused(Exception):
    """A limit was crossed: reading stops here."""


@dataclass
class Unpacked:
    """What one pass over a tarball found; ``course_dir`` is usable only without ``problems``."""

    course_dir: Path | None = None
    org: str = ""
    number: str = ""
    run: str = ""
    problems: list[str] = field(default_factory=list)

    def refuse(self, problem: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem)
        elif len(self.problems) == _MAX_PROBLEMS:
            self.problems.append("... and more problems.")


class _Counted(io.RawIOBase):
    """A readable stream that counts what is read from it."""

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        data = self.raw.read(len(view))
        view[: len(data)] = data
        self.count += len(data)
        return len(data)


class _Bounded:
    """The decompressed stream, refusing more than the limits allow as it is read."""

    def __init__(self, gz: io.BufferedIOBase, compressed: _Counted):
        self.gz, self.compressed, self.count = gz, compressed, 0
        self.max_total = settings.EXPORTBULK_RESTORE_MAX_UNCOMPRESSED_BYTES
        self.max_ratio = settings.EXPORTBULK_RESTORE_MAX_COMPRESSION_RATIO

    def read(self, size: int = -1) -> bytes:
        data = self.gz.read(size)
        self.count += len(data)
        if self.count > self.max_total:
            raise _Refused(f"The tarball holds more than {self.max_total} bytes uncompressed (the limit).")
        if self.count > _RATIO_FLOOR and self.count > self.max_ratio * max(self.compressed.count, 1):
            raise _Refused(f"The tarball is compressed more than {self.max_ratio}:1 (a gzip bomb?).")
        return data


def _member_kind(member: tarfile.TarInfo) -> str | None:
    """What a member that is neither a regular file nor a folder is, or None."""
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device node"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    if not (member.isreg() or member.isdir()):
        return f"of an unsupported type ({member.type!r})"
    return None


def _relative(name: str) -> list[str]:
    """The member's path segments, without ``.`` segments (``tar czf x.tar.gz ./course`` writes them)."""
    return [part for part in name.split("/") if part not in ("", ".")]


def unpack(stream: BinaryIO, dest: Path) -> Unpacked:
    """Unpack a ``.tar.gz`` into the empty folder ``dest``, checking it; see the module's docstring."""
    result = Unpacked()
    tops: set[str] = set()
    xml_files: list[Path] = []
    compressed = _Counted(stream)
    try:
        with igzip.IGzipFile(fileobj=compressed, mode="rb") as gz:
            _unpack_members(_Bounded(gz, compressed), dest, result, tops, xml_files)
    except _Refused as refused:
        result.refuse(str(refused))
        return result
    except EOFError:
        result.refuse("The gzip stream is truncated: the tarball is incomplete.")
        return result
    except (OSError, tarfile.TarError, ValueError):  # gzip.BadGzipFile is an OSError
        result.refuse("The file is not a gzip-compressed tar archive, or it is corrupt.")
        return result
    if len(tops) > 1:
        result.refuse(
            f"The tarball has {len(tops)} top folders ({', '.join(sorted(tops)[:3])}); it needs one."
        )
    elif not tops:
        result.refuse("The tarball is empty.")
    for path in xml_files:
        for problem in xml_problems(path):
            result.refuse(f"{path.relative_to(dest).as_posix()} {problem}.")
    if len(tops) != 1:
        return result
    course_dir = dest / tops.pop()
    if not (course_dir / "course.xml").is_file():
        result.refuse(f"The top folder {course_dir.name!r} holds no course.xml.")
        return result
    identity, problems = course_problems(course_dir)
    for problem in problems:
        result.refuse(problem)
    if identity and not result.problems:  # no validator sees a tree that failed a check
        key = identity.key
        result.org, result.number, result.run = key.org or "", key.course or "", key.run or ""
        result.course_dir = course_dir
    return result


def _unpack_members(
    source: _Bounded, dest: Path, result: Unpacked, tops: set[str], xml_files: list[Path]
) -> None:
    max_members = settings.EXPORTBULK_RESTORE_MAX_MEMBERS
    max_text = settings.EXPORTBULK_RESTORE_MAX_TEXT_FILE_BYTES
    seen: set[str] = set()
    # typeshed wants a seekable, writable file object; a stream ("r|") is only read.
    with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
        for count, member in enumerate(tar, start=1):
            if count > max_members:
                raise _Refused(f"The tarball has more than {max_members} members (the limit).")
            problem = unsafe_relative_path(member.name)
            kind = _member_kind(member)
            parts = _relative(member.name)
            if problem or kind:
                result.refuse(f"Member {member.name!r} {problem or f'is {kind}'}.")
                continue
            if not parts:
                continue  # the archive's root folder itself ("./")
            if len(parts) == 1 and member.isreg():
                result.refuse(f"Member {member.name!r} is outside the tarball's top folder.")
                continue
            tops.add(parts[0])
            relative = "/".join(parts)
            if relative in seen:
                result.refuse(f"Member {member.name!r} appears twice.")
                continue
            seen.add(relative)
            target = dest.joinpath(*parts)
            text = member.isreg() and target.suffix in TEXT_SUFFIXES and parts[1:2] != ["static"]
            if text and member.size > max_text:
                result.refuse(f"Member {member.name!r} is over {max_text} bytes, the limit for a text file.")
                continue  # its bytes are skipped, never written
            try:
                if member.isdir():
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                _write_member(tar, member, target)
            except OSError as exc:
                result.refuse(
                    f"Member {member.name!r} cannot be written ({exc.strerror or type(exc).__name__})."
                )
                continue
            if text and target.suffix == ".xml":
                xml_files.append(target)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    data = tar.extractfile(member)
    assert data is not None  # a regular file
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := data.read(_CHUNK):
            out.write(chunk)
