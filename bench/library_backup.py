"""
Library backup figure: what change-awareness saves for v2 content libraries.

- ``library_backup_incremental_ratio``: a backup of N libraries (Learning Core on MariaDB) with
  one changed, over the first full backup of the same N, in one run on the same stack. The
  unchanged libraries cost their fingerprint (three small queries each, no dump); the changed one
  is dumped with Learning Core's ``create_zip_file`` and uploaded. ``library_backup_unchanged_s``
  is a run with nothing changed: the part of every run that does not depend on the changes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.backup import timed_backup

REPO = Path(__file__).resolve().parents[1]
# Per library, a question bank's size: 40 components, each with a 50 KB static file (2 MB).
COMPONENTS, STATIC_KB = 40, 50
_CREATE = """
import os, django
django.setup()
from tests.libraries import make_library
for ref in {refs!r}:
    files = lambda i: {{"block.xml": f"<html><p>{{ref}} {{i}}</p></html>".encode(),
                        "static/d.bin": os.urandom({size})}}
    make_library(ref, [("html", f"part{{i}}", f"Part {{i}}", files(i)) for i in range({count})], title=ref)
"""
_CHANGE = """
import django
django.setup()
from tests.libraries import change_component
change_component({ref!r}, "part0", b'<html display_name="Part 0"><p>changed</p></html>')
"""


def _in_stack(stack: Any, code: str) -> None:
    subprocess.run([sys.executable, "-c", code], env=stack.env, cwd=REPO, check=True, timeout=3600)


def bench_library_backup(stack: Any, copies: int, figures: dict) -> None:
    refs = [f"lib:BenchLib:lib{i:03d}" for i in range(copies)]
    _in_stack(stack, _CREATE.format(refs=refs, size=STATIC_KB * 1024, count=COMPONENTS))
    client = stack.client()
    full = timed_backup(client, refs, copies)
    # What a run costs with nothing to dump: the requests, the fingerprints, the manifest.
    unchanged = timed_backup(client, refs, 0)
    _in_stack(stack, _CHANGE.format(ref=refs[0]))
    incremental = timed_backup(client, refs, 1)
    figures["library_backup_full_s"] = full
    figures["library_backup_unchanged_s"] = unchanged
    figures["library_backup_incremental_s"] = incremental
    figures["library_backup_incremental_ratio"] = incremental / full
