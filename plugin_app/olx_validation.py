"""
olxcleaner's findings on an unpacked course, within a time and a memory budget.

olxcleaner builds one object per pointer it follows, so a few hundred bytes of OLX that point
45 times at one sequential, which points 45 times at one vertical, and so on, make it build
about 91,000 objects and as many findings. It therefore runs in a child process of its own
(``python -m plugin_app.olx_validation``) whose address space is capped (``RLIMIT_AS``) and
which is killed at its deadline or on a cancel; either is a blocking problem of the item, never
a crash of the worker. The child sends back at most ``MAX_FINDINGS`` findings of at most
``MAX_FINDINGS_BYTES`` (most severe first) with the count of each level, so that what is stored
and shown stays small whatever the course holds.

It is called as Studio's import calls it (``cms/djangoapps/contentstore/tasks.py``
``validate_course_olx``): ``COURSE_OLX_VALIDATION_STAGE`` steps, the
``COURSE_OLX_VALIDATION_IGNORE_LIST``, and the installed XBlock types as ``allowed_xblocks``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Findings kept per item, and their JSON size: a status of the most items a request may hold
# (EXPORTBULK_MAX_COURSES_PER_REQUEST, 500) stays under 2 MB.
MAX_FINDINGS = 20
MAX_FINDINGS_BYTES = 3000
_MAX_MESSAGE_CHARS = 300
# Studio's defaults (cms/envs/common.py) where the platform's settings are absent.
_STUDIO_STAGE = 1
_OUT_OF_MEMORY = 3  # the child's exit status when it ran out of its memory budget
_POLL_SECONDS = 0.5
CANCELED = "Canceled while olxcleaner checked the course."


@dataclass
class Validation:
    """What olxcleaner found: the first findings, the count of each level, and why it could not
    finish (``problem``), if it could not."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problem: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def at_or_above(self, level: str) -> int:
        """How many findings are at ``level`` or more severe."""
        return sum(n for name, n in self.counts.items() if LEVELS.index(name) >= LEVELS.index(level))


def capped(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first findings that fit ``MAX_FINDINGS`` and ``MAX_FINDINGS_BYTES``, messages shortened."""
    kept, size = [], 2
    for finding in findings[:MAX_FINDINGS]:
        finding = {**finding, "message": str(finding.get("message", ""))[:_MAX_MESSAGE_CHARS]}
        size += len(json.dumps(finding)) + 2
        if size > MAX_FINDINGS_BYTES:
            break
        kept.append(finding)
    return kept


def validate(course_dir: Path, should_stop: Callable[[], bool] | None = None) -> Validation:
    """olxcleaner's findings on the course, in a child process held to the configured limits.

    ``should_stop`` (a cancel) is asked while it runs; the child is then killed and the
    Validation's ``problem`` says so.
    """
    from django.conf import settings

    seconds = settings.EXPORTBULK_RESTORE_VALIDATION_SECONDS
    request = {
        "course_dir": str(course_dir),
        "steps": getattr(settings, "COURSE_OLX_VALIDATION_STAGE", _STUDIO_STAGE),
        "ignore": getattr(settings, "COURSE_OLX_VALIDATION_IGNORE_LIST", None),
        "allowed_xblocks": _installed_xblocks(),
        "memory_bytes": settings.EXPORTBULK_RESTORE_VALIDATION_MEMORY_BYTES,
        "cpu_seconds": seconds,
    }
    with tempfile.TemporaryFile() as out:
        # -P: the working folder is not on the child's import path (a tarball may hold .py files).
        child = subprocess.Popen(
            [sys.executable, "-P", "-m", "plugin_app.olx_validation", json.dumps(request)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        problem = _wait(child, seconds, should_stop)
        if problem:
            return Validation(problem=problem)
        out.seek(0)
        answer = out.read()
    if child.returncode == _OUT_OF_MEMORY:
        limit = settings.EXPORTBULK_RESTORE_VALIDATION_MEMORY_BYTES // 1024**2
        return Validation(problem=f"olxcleaner needed more than its {limit} MiB of memory on this course.")
    try:
        parsed = json.loads(answer)
        return Validation(findings=capped(parsed["findings"]), counts=parsed["counts"])
    except (ValueError, KeyError, TypeError):
        return Validation(problem=f"olxcleaner could not check this course (exit status {child.returncode}).")


def _wait(child: subprocess.Popen[bytes], seconds: float, should_stop: Callable[[], bool] | None) -> str:
    """Wait for the child; kill it at its deadline or on a cancel, and say which."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            child.wait(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            return ""
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            problem = f"olxcleaner took longer than its {seconds:g} seconds on this course."
        elif should_stop and should_stop():
            problem = CANCELED
        else:
            continue
        child.kill()
        child.wait()
        return problem


def _installed_xblocks() -> list[str] | None:
    """The XBlock types installed here, as Studio passes them; None (olxcleaner's own list) where
    none is installed, as outside Open edX: an empty list would refuse every block."""
    from importlib.metadata import entry_points

    names = sorted({entry.name for entry in entry_points(group="xblock.v1")})
    return names or None


# In the child process -------------------------------------------------------------------------


def _findings(request: dict[str, Any]) -> dict[str, Any]:
    import olxcleaner

    course_dir = request["course_dir"]
    _course, errorstore, _url_names = olxcleaner.validate(
        course_dir,
        steps=request["steps"],
        ignore=request["ignore"],
        allowed_xblocks=request["allowed_xblocks"],
    )
    counts: dict[str, int] = {}
    for error in errorstore.errors:
        counts[error.level] = counts.get(error.level, 0) + 1
    # The most severe first, and only as many as are kept: sorting 91,000 findings costs little,
    # describing them all would not.
    worst = sorted(errorstore.errors, key=lambda e: (-LEVELS.index(e.level), str(e.filename or ""), e.name))[
        : MAX_FINDINGS * 2
    ]
    findings = []
    for error in worst:
        filename = str(error.filename or "")
        if filename.startswith(course_dir):
            filename = os.path.relpath(filename, course_dir)
        findings.append(
            {"level": error.level, "name": error.name, "file": filename, "message": error.description}
        )
    return {"findings": capped(findings), "counts": counts}


def _main(raw: str) -> int:
    import resource

    request = json.loads(raw)
    resource.setrlimit(resource.RLIMIT_AS, (request["memory_bytes"],) * 2)
    cpu = int(request["cpu_seconds"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    try:
        answer = _findings(request)
    except MemoryError:
        return _OUT_OF_MEMORY
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
