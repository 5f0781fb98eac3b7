"""
Exporting one course: streamed as a tarball into storage, never held whole in memory or on disk.

How many run at once is the lifecycle's business (one Celery task per course, and threads for
a synchronous export). Backups write the same tarball under another name (``write_course``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from opaque_keys.edx.keys import CourseKey

from plugin_app import storage
from plugin_app.archive import write_tarball
from plugin_app.backends import get_backend
from plugin_app.backends.base import CourseNotFound

log = logging.getLogger(__name__)

TARBALL_CONTENT_TYPE = "application/gzip"


class ExportError(Exception):
    """An export of one course failed; the message is safe to show to the caller."""


@dataclass(frozen=True)
class Written:
    """What was stored: its size and sha256 ("" when not asked for), counted from the bytes as they
    were sent."""

    size: int
    sha256: str


class Digesting:
    """A write-only file that counts and (``hashed``) hashes what passes through it to ``out``."""

    def __init__(self, out: BinaryIO, hashed: bool = True):
        self._out, self.size, self._hash = out, 0, hashlib.sha256() if hashed else None

    def write(self, data: bytes) -> int:
        if self._hash is not None:
            self._hash.update(data)
        self.size += len(data)
        return self._out.write(data)

    def written(self) -> Written:
        return Written(self.size, self._hash.hexdigest() if self._hash is not None else "")

    def flush(self) -> None:
        self._out.flush()


def storage_name(make_name: Callable[[], str]) -> str:
    """``make_name()``, or ExportError when the course id would not make a safe storage name."""
    try:
        return make_name()
    except (ValueError, SuspiciousFileOperation):
        # e.g. an old-style key "../../x": its object key would leave the configured prefix.
        raise ExportError("The course id cannot be used as a storage object name.") from None


def export_course(
    course_key: CourseKey, process_id: str = "", should_stop: Callable[[], bool] | None = None
) -> str:
    """Export one course into storage; return the storage name of its tarball.

    With a process, the tarball is stored under that process's own name (what its URLs serve: a
    later export never replaces it), then copied to the course's usual name (``<course_id>.tar.gz``,
    the latest export). ``should_stop`` is asked between parts; if it says so, storage.Stopped is
    raised and no object is left.
    """
    latest = storage_name(lambda: storage.export_name(str(course_key)))
    name = storage_name(lambda: storage.export_name(str(course_key), process_id))
    written = write_course(course_key, name, should_stop, hashed=False)  # its size is enough
    if name != latest:
        with export_errors(course_key):
            storage.copy(name, latest, written.size)
    return name


def write_course(
    course_key: CourseKey, name: str, should_stop: Callable[[], bool] | None = None, *, hashed: bool = True
) -> Written:
    """Stream the course's tarball into the storage name ``name``, with its sha256 if ``hashed``;
    raises ExportError (or storage.Stopped, see ``export_course``)."""
    with export_errors(course_key), get_backend().export_olx(course_key) as tree:
        if not _safe_folder_name(tree.root_name):
            # The tarball's top folder: ".." would make every member a path outside the extraction root.
            raise ExportError(f"The course's url_name {tree.root_name!r} cannot name a folder.")
        with storage.open_writer(name, TARBALL_CONTENT_TYPE, should_stop) as out:
            digesting = Digesting(out, hashed)
            write_tarball(tree, digesting, settings.EXPORTBULK_COMPRESSION_LEVEL)  # type: ignore[arg-type]
    return digesting.written()


@contextlib.contextmanager
def export_errors(course_key: object) -> Iterator[None]:
    """Turn what a backend or the storage raises into an ExportError whose message is safe to show."""
    try:
        yield
    except CourseNotFound as exc:
        raise ExportError(exc.reason) from None
    except (BotoCoreError, ClientError) as exc:
        # botocore's messages name the operation and the S3 error code, never the credentials.
        log.warning("Export of %s could not be stored: %s", course_key, exc)
        raise ExportError(
            f"Storage error: the export could not be uploaded ({storage.describe_error(exc)})."
        ) from None
    except OSError as exc:
        log.warning("Export of %s failed: %s", course_key, exc)
        raise ExportError(f"Storage error: {exc.strerror or type(exc).__name__}.") from None


def _safe_folder_name(name: str) -> bool:
    return name not in ("", ".", "..") and not any(c in name for c in "/\\\x00")
