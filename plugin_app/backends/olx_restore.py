"""
Restoring an unpacked OLX course into an OLX root: the course's new identity, then one atomic swap.

The new tree is unpacked in ``<root>/.exportbulk-restore/<token>/`` (the same filesystem, two
levels down so that it is never taken for a course). When the target key differs from the
tarball's, the tree is given the target's identity, as Studio's importer does with a ``target_id``:
``course.xml``, ``course/<run>.xml``, ``policies/<run>/``, the wiki slug, and the
``block-v1:``/``asset-v1:``/``course-v1:``/``i4x://`` keys of the old course (static files keep
their bytes). Whatever the rewrite did, the tree must then read as exactly the target course, as
the course index reads it, or nothing is swapped in. The swap is ``renameat2(RENAME_EXCHANGE)``:
one system call puts the new tree where the old one was, so a crash leaves the old course or the
new one. The inode of the new tree is written down first, so that a retried attempt can tell that
its swap already happened.
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
from typing import TYPE_CHECKING, Any

from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from plugin_app.backends.base import RestoreRefused
from plugin_app.backends.olx_course import read_xml, write_atomic, write_xml
from plugin_app.olx_checks import TEXT_SUFFIXES, course_problems

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from plugin_app.backends.olx_course import Course

STAGING = ".exportbulk-restore"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


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
# What names the course (course.xml, the run's file and folder, the policies' keys, the wiki slug,
# the asset policy) is parsed, changed and serialized: a text substitution misses
# ``org = 'X'`` and rewrites look-alikes inside comments. References to the course's blocks and
# assets inside content (HTML, XML bodies, JSON values) are renamed as Studio's importer renames
# them, key by key; the restored tree is read back afterwards (``check_identity``).


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


def _rename_keys(text: str, patterns: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in patterns:
        text = pattern.sub(replacement, text)
    return text


def _rewrite_text(path: Path, patterns: list[tuple[re.Pattern[str], str]]) -> None:
    """Rename the course's keys in a content file (its size was capped when it was unpacked)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    new_text = _rename_keys(text, patterns)
    if new_text != text:
        write_atomic(path, new_text.encode("utf-8"))


def _renamed_json(value: Any, rename: Callable[[str], str]) -> Any:
    """A JSON value with ``rename`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return rename(value)
    if isinstance(value, list):
        return [_renamed_json(item, rename) for item in value]
    if isinstance(value, dict):
        return {rename(k): _renamed_json(v, rename) for k, v in value.items()}
    return value


def _edit_json(path: Path, edit: Callable[[Any], Any]) -> None:
    """Parse, change and write back a JSON file (as Studio's export writes it), if it changed."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return  # absent, or no JSON the platform reads (the course's own policies were checked)
    changed = edit(data)
    if changed != data:
        write_atomic(path, json.dumps(changed, indent=4, sort_keys=True).encode("utf-8") + b"\n")


def _default_wiki_slugs(key: CourseKey) -> tuple[str, str]:
    """The wiki slugs Studio gives a course by default; its importer renames these
    (``CourseImportManager.static_updater``), and only these."""
    return f"{key.org}.{key.course}.{key.run}", str(key.course)


def _course_policy(old: CourseKey, new: CourseKey, rename: Callable[[str], str]) -> Callable[[Any], Any]:
    """The edit of ``policy.json``: the course's entry under its new run, a default wiki slug renamed."""

    def edit(policy: dict[str, Any]) -> dict[str, Any]:
        policy = _renamed_json(policy, rename)
        entry = policy.pop(f"course/{old.run}", None)
        if isinstance(entry, dict):
            if entry.get("wiki_slug") in _default_wiki_slugs(old):
                entry["wiki_slug"] = _default_wiki_slugs(new)[0]
            policy[f"course/{new.run}"] = entry
        return policy

    return edit


def _asset_policy(old: CourseKey, new: CourseKey, rename: Callable[[str], str]) -> Callable[[Any], Any]:
    """The edit of ``assets.json``: each asset's ``content_son`` and c4x thumbnail name the course."""
    son = {"org": (old.org, new.org), "course": (old.course, new.course), "run": (old.run, new.run)}

    def edit(assets: dict[str, Any]) -> dict[str, Any]:
        assets = _renamed_json(assets, rename)
        for entry in assets.values():
            content = entry.get("content_son")
            for field, (was, now) in son.items():
                if isinstance(content, dict) and content.get(field) == was:
                    content[field] = now
            thumbnail = entry.get("thumbnail_location")
            if isinstance(thumbnail, list) and thumbnail[:3] == ["c4x", old.org, old.course]:
                thumbnail[1:3] = [new.org, new.course]
        return assets

    return edit


def _rename_wiki(root_file: Path, old: CourseKey, new: CourseKey) -> None:
    """A default wiki slug in the course's root file, renamed (as ``_course_policy`` does)."""
    root = read_xml(root_file)
    wikis = [wiki for wiki in root.iter("wiki") if wiki.get("slug") in _default_wiki_slugs(old)]
    for wiki in wikis:
        wiki.set("slug", _default_wiki_slugs(new)[0])
    if wikis:
        write_xml(root_file, root)


def rewrite_identity(course_dir: Path, old: CourseKey, new: CourseKey) -> None:
    """Give an unpacked OLX course the identity ``new`` (it was exported as ``old``)."""
    if not (old.org and old.course and old.run and new.org and new.course and new.run):
        raise ValueError(f"{old} or {new} is not a course run's key")
    pointer = read_xml(course_dir / "course.xml")
    for attribute, value in (("org", new.org), ("course", new.course), ("url_name", new.run)):
        pointer.set(attribute, value)
    write_xml(course_dir / "course.xml", pointer)
    if old.run != new.run:
        os.rename(course_dir / "course" / f"{old.run}.xml", course_dir / "course" / f"{new.run}.xml")
        if (course_dir / "policies" / old.run).is_dir():
            os.rename(course_dir / "policies" / old.run, course_dir / "policies" / new.run)
    patterns = _key_patterns(old, new)

    def rename(text: str) -> str:
        return _rename_keys(text, patterns)

    policies = course_dir / "policies"
    _edit_json(policies / new.run / "policy.json", _course_policy(old, new, rename))
    _edit_json(policies / "assets.json", _asset_policy(old, new, rename))
    _rename_wiki(course_dir / "course" / f"{new.run}.xml", old, new)
    done = {course_dir / "course.xml", policies / new.run / "policy.json", policies / "assets.json"}
    for folder, subfolders, files in os.walk(course_dir):
        if Path(folder) == course_dir:
            subfolders[:] = [name for name in subfolders if name != "static"]
        for name in files:
            path = Path(folder) / name
            if path in done or not name.endswith(TEXT_SUFFIXES):
                continue
            if name.endswith(".json"):
                _edit_json(path, lambda data: _renamed_json(data, rename))
            else:
                _rewrite_text(path, patterns)


def check_identity(course_dir: Path, key: CourseKey) -> None:
    """Refuse (RestoreRefused) a tree that does not read as exactly the course ``key``, as the index
    reads it, and whose run's file is not a ``<course>``: nothing else may be swapped in."""
    identity, problems = course_problems(course_dir)
    if identity is None or identity.key != key:
        claims = identity.key if identity else "no course"
        raise RestoreRefused(f"The restored tree reads as {claims}, not {key}; nothing was changed.")
    if problems:
        raise RestoreRefused(f"The restored tree cannot be read: {' '.join(problems)} Nothing was changed.")


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
    ambiguous: Callable[[CourseKey], bool]

    def staging_root(self) -> Path:
        return staging_root(self.root)

    def restore_course(
        self, course_key: CourseKey, course_dir: Path, source_key: CourseKey, user: User, token: str
    ) -> None:
        """Give the tree the target's identity, then swap it in (see the module's docstring)."""
        key = unbranched(course_key)
        if unbranched(source_key) != key:
            rewrite_identity(course_dir, source_key, key)
        check_identity(course_dir, key)
        if self.ambiguous(key):
            raise RestoreRefused(f"Several course folders claim {key}; an operator must settle which.")
        existing = self._courses().get(key)
        target = existing.path if existing else self.root / f"{key.org}+{key.course}+{key.run}"
        if existing is None and target.exists():
            raise RestoreRefused(f"The folder {target.name} exists and holds no readable course.")
        swap_in(course_dir, target, self.staging_root() / token)

    def restored_before(self, course_key: CourseKey, token: str) -> bool:
        return swapped_before(self.staging_root() / token)
