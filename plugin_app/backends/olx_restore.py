"""
Restoring an unpacked OLX course into an OLX root: the course's new identity, then one atomic swap.

The new tree is unpacked in ``<root>/.exportbulk-restore/<token>/`` (the same filesystem, two
levels down so that it is never taken for a course). When the target key differs from the
tarball's, the tree is given the target's identity, as Studio's importer does with a ``target_id``:
``course.xml``, ``course/<run>.xml``, ``policies/<run>/``, the wiki slug, and the
``block-v1:``/``asset-v1:``/``course-v1:``/``i4x://`` keys of the old course (static files keep
their bytes). The swap is ``renameat2(RENAME_EXCHANGE)``: one system call puts the new tree where
the old one was, so a crash leaves the old course or the new one. The inode of the new tree is
written down first, so that a retried attempt can tell that its swap already happened.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from plugin_app.backends.olx_course import Course

STAGING = ".exportbulk-restore"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_TEXT_SUFFIXES = (".xml", ".html", ".json", ".csv")


def unbranched(course_key: CourseKey) -> CourseKey:
    """The key without its branch (``...+branch@draft`` names the same course)."""
    return course_key.for_branch(None) if isinstance(course_key, CourseLocator) else course_key


def staging_root(root: Path) -> Path:
    return root / STAGING


def exchange(a: Path, b: Path) -> None:
    """Swap two paths in one atomic step (Linux ``renameat2``); OSError where unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on a folder, released on exit (the lock the course's writers take)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# Identity -------------------------------------------------------------------------------------


def _key_patterns(old: CourseKey, new: CourseKey) -> list[tuple[re.Pattern[str], str]]:
    o, n = old, new
    # A key part ends where a character that cannot be in it follows.
    end = r"(?![\w.~%:-])"
    pairs = [
        (f"block-v1:{o.org}+{o.course}+{o.run}+", f"block-v1:{n.org}+{n.course}+{n.run}+"),
        (f"asset-v1:{o.org}+{o.course}+{o.run}+", f"asset-v1:{n.org}+{n.course}+{n.run}+"),
        (f"i4x://{o.org}/{o.course}/", f"i4x://{n.org}/{n.course}/"),
    ]
    patterns = [(re.compile(re.escape(a)), b.replace("\\", r"\\")) for a, b in pairs]
    patterns.append((re.compile(re.escape(f"course-v1:{o.org}+{o.course}+{o.run}") + end), str(n)))
    return patterns


def _rewrite_text(path: Path, patterns: list[tuple[re.Pattern[str], str]]) -> None:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    new_text = text
    for pattern, replacement in patterns:
        new_text = pattern.sub(replacement, new_text)
    if new_text != text:
        path.write_text(new_text, encoding="utf-8")


def _sub_file(path: Path, pattern: str, replacement: str) -> None:
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(pattern, lambda _m: replacement, text), encoding="utf-8")


def rewrite_identity(course_dir: Path, old: CourseKey, new: CourseKey) -> None:
    """Give an unpacked OLX course the identity ``new`` (it was exported as ``old``)."""
    if not (old.org and old.course and old.run and new.org and new.course and new.run):
        raise ValueError(f"{old} or {new} is not a course run's key")
    q = re.escape
    pointer = course_dir / "course.xml"
    for attribute, value in (("org", new.org), ("course", new.course), ("url_name", new.run)):
        _sub_file(pointer, rf'\b{attribute}="[^"]*"', f'{attribute}="{value}"')
    if old.run != new.run:
        os.rename(course_dir / "course" / f"{old.run}.xml", course_dir / "course" / f"{new.run}.xml")
        if (course_dir / "policies" / old.run).is_dir():
            os.rename(course_dir / "policies" / old.run, course_dir / "policies" / new.run)
    policy = course_dir / "policies" / new.run / "policy.json"
    _sub_file(policy, rf'"course/{q(old.run)}"', f'"course/{new.run}"')
    # Studio's importer renames a default wiki slug (``CourseImportManager.static_updater``).
    old_slugs = rf"(?:{q(f'{old.org}.{old.course}.{old.run}')}|{q(old.course)})"
    new_slug = f"{new.org}.{new.course}.{new.run}"
    _sub_file(policy, rf'"wiki_slug": "{old_slugs}"', f'"wiki_slug": "{new_slug}"')
    _sub_file(
        course_dir / "course" / f"{new.run}.xml", rf'<wiki slug="{old_slugs}"', f'<wiki slug="{new_slug}"'
    )
    # Asset metadata names the course in ``content_son`` and in its thumbnails' c4x locations.
    assets = course_dir / "policies" / "assets.json"
    for field, old_value, new_value in (("org", old.org, new.org), ("course", old.course, new.course),
                                        ("run", old.run, new.run)):  # fmt: skip
        _sub_file(assets, rf'"{field}": "{q(old_value)}"', f'"{field}": "{new_value}"')
    if assets.is_file():
        thumbnail = re.compile(rf'"c4x",(\s*)"{q(old.org)}",(\s*)"{q(old.course)}"')
        text = assets.read_text(encoding="utf-8")
        text = thumbnail.sub(lambda m: f'"c4x",{m[1]}"{new.org}",{m[2]}"{new.course}"', text)
        assets.write_text(text, encoding="utf-8")
    patterns = _key_patterns(old, new)
    for folder, subfolders, files in os.walk(course_dir):
        if Path(folder) == course_dir:
            subfolders[:] = [name for name in subfolders if name != "static"]
        for name in files:
            if name.endswith(_TEXT_SUFFIXES):
                _rewrite_text(Path(folder) / name, patterns)


# Swap -----------------------------------------------------------------------------------------


def _record(token_dir: Path) -> Path:
    return token_dir / "swap.json"


def swap_in(new_tree: Path, target: Path, token_dir: Path) -> None:
    """Put ``new_tree`` at ``target``: exchanged with the course there (under its exclusive lock),
    or renamed into place for a new course; the old tree ends in ``token_dir`` and is removed."""
    _record(token_dir).write_text(json.dumps({"inode": new_tree.stat().st_ino, "target": str(target)}))
    if target.exists():
        with locked(target):
            exchange(new_tree, target)
    else:
        with locked(token_dir.parent):  # one creator at a time in this root
            os.rename(new_tree, target)  # refuses a non-empty folder created meanwhile
    shutil.rmtree(token_dir, ignore_errors=True)


def swapped_before(token_dir: Path) -> bool:
    """Whether an earlier attempt with this token already swapped its tree in; then cleans up.

    The earlier attempt may have died between its swap and its cleanup.
    """
    try:
        record = json.loads(_record(token_dir).read_text())
    except (OSError, ValueError):
        return False
    try:
        done = Path(record["target"]).stat().st_ino == int(record["inode"])
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        done = False
    if done:
        shutil.rmtree(token_dir, ignore_errors=True)
    return done


class OlxRestoreMixin:
    """The restore methods of ``OlxDirectoryBackend`` (which has ``root`` and its course index)."""

    root: Path
    _courses: Callable[[], dict[CourseKey, Course]]

    def staging_root(self) -> Path:
        return staging_root(self.root)

    def restore_course(
        self, course_key: CourseKey, course_dir: Path, source_key: CourseKey, user: User, token: str
    ) -> None:
        """Give the tree the target's identity, then swap it in (see the module's docstring)."""
        key = unbranched(course_key)
        if unbranched(source_key) != key:
            rewrite_identity(course_dir, source_key, key)
        existing = self._courses().get(key)
        target = existing.path if existing else self.root / f"{key.org}+{key.course}+{key.run}"
        if existing is None and target.exists():
            raise FileExistsError(errno.EEXIST, "a folder of that name is not a course", target.name)
        swap_in(course_dir, target, self.staging_root() / token)

    def restored_before(self, course_key: CourseKey, token: str) -> bool:
        return swapped_before(self.staging_root() / token)
