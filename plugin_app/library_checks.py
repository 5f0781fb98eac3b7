"""
A library backup from outside (Learning Core's zip), checked before anything is written.

The entries are checked as an upload's content ZIP is (names, links, encryption, sizes and ratios,
``content_zip.entry_problems``) with the restore's limits, and their number too. Only a ZIP that
passes is read: ``package.toml`` must be there, of a format version this app loads, naming a
library key; every TOML must parse, and every XML parse with DTDs and entities forbidden.
Problems are collected, not raised, so that an item reports them all together.
"""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

from django.conf import settings

from plugin_app.backends.libraries import library_key
from plugin_app.content_zip import entry_problems
from plugin_app.olx_checks import xml_problems

PACKAGE_TOML = "package.toml"
# Learning Core's archive format versions this app loads (openedx-core 0.36 and 1.x write 1).
SUPPORTED_FORMAT_VERSIONS = (1,)
_MAX_PROBLEMS = 20


def check_library_zip(path: Path) -> list[str]:
    """Every reason to refuse the library backup at ``path`` (empty: it may be loaded)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return ["The source is not a ZIP file (a library backup is Learning Core's .zip)."]
    with archive:
        max_members = settings.EXPORTBULK_RESTORE_MAX_MEMBERS
        if len(archive.infolist()) > max_members:
            return [f"The ZIP has more than {max_members} entries (the limit)."]
        names, problems = entry_problems(
            archive,
            settings.EXPORTBULK_RESTORE_MAX_UNCOMPRESSED_BYTES,
            settings.EXPORTBULK_RESTORE_MAX_COMPRESSION_RATIO,
        )
        if not problems:  # a ZIP with unsafe entries is not read at all
            problems = _content_problems(archive, names)
    if len(problems) > _MAX_PROBLEMS:
        problems = [*problems[:_MAX_PROBLEMS], "... and more problems."]
    return problems


def _content_problems(archive: zipfile.ZipFile, names: set[str]) -> list[str]:
    problems = []
    if PACKAGE_TOML not in names:
        problems.append(f"{PACKAGE_TOML} is missing: this is not a Learning Core library backup.")
    for name in sorted(names):
        if name.endswith(".toml"):
            try:
                document = tomllib.loads(archive.read(name).decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                problems.append(f"{name} is not valid TOML ({exc}).")
                continue
            if name == PACKAGE_TOML:
                problems.extend(_package_problems(document))
        elif name.endswith(".xml"):
            with archive.open(name) as member:
                problems.extend(f"{name} {problem}." for problem in xml_problems(member))
    return problems


def _package_problems(document: dict[str, object]) -> list[str]:
    meta, package = document.get("meta"), document.get("learning_package")
    if not isinstance(meta, dict) or not isinstance(package, dict):
        return [f"{PACKAGE_TOML} needs a [meta] and a [learning_package] table."]
    problems = []
    version = meta.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
        problems.append(f"{PACKAGE_TOML} has format_version {version!r}; this app loads {supported}.")
    # Learning Core reads the archive's org and slug from its key (0.x and 1.x write "key"); the
    # restore's target key is ours, never the archive's.
    key = package.get("key")
    if not isinstance(key, str) or library_key(key) is None:
        problems.append(f"{PACKAGE_TOML} names {key!r}, not a library key (lib:Org:slug).")
    return problems
