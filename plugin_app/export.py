"""
Exporting courses: each course streamed as a tarball into storage, several courses at once.

Threads, not processes: the work is compression (ISA-L releases the GIL), file reads and
network writes, so a small pool keeps every core busy without forking a Django process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.db import connections
from opaque_keys.edx.keys import CourseKey

from plugin_app import storage
from plugin_app.archive import write_tarball
from plugin_app.backends import get_backend
from plugin_app.backends.base import CourseNotFound

log = logging.getLogger(__name__)

TARBALL_CONTENT_TYPE = "application/gzip"


class ExportError(Exception):
    """An export of one course failed; the message is safe to show to the caller."""


def export_course(course_key: CourseKey, process_id: str = "") -> str:
    """Export one course into storage; return the storage name of its tarball.

    With a process, the tarball is stored under that process's own name (what its URLs serve),
    then copied to the course's usual name (``<course_id>.tar.gz``), the latest export.
    """
    try:
        latest = storage.export_name(str(course_key))
        name = storage.export_name(str(course_key), process_id)
    except (ValueError, SuspiciousFileOperation):
        # e.g. an old-style key "../../x": its object key would leave the configured prefix.
        raise ExportError("The course id cannot be used as a storage object name.") from None
    try:
        with get_backend().export_olx(course_key) as tree:
            if not _safe_folder_name(tree.root_name):
                # The tarball's top folder: ".." would make every member a path outside the extraction root.
                raise ExportError(f"The course's url_name {tree.root_name!r} cannot name a folder.")
            with storage.open_writer(name, TARBALL_CONTENT_TYPE) as out:
                write_tarball(tree, out, settings.EXPORTBULK_COMPRESSION_LEVEL)
        if name != latest:
            storage.copy(name, latest)
    except CourseNotFound:
        raise ExportError("Course not found.") from None
    except (BotoCoreError, ClientError) as exc:
        # botocore's messages name the operation and the S3 error code, never the credentials.
        log.warning("Export of %s could not be stored: %s", course_key, exc)
        raise ExportError(
            f"Storage error: the export could not be uploaded ({_storage_reason(exc)})."
        ) from None
    except OSError as exc:
        log.warning("Export of %s failed: %s", course_key, exc)
        raise ExportError(f"Storage error: {exc.strerror or type(exc).__name__}.") from None
    finally:
        # Backends may touch the database from this thread; give its connection back.
        connections.close_all()
    return name


def _safe_folder_name(name: str) -> bool:
    return name not in ("", ".", "..") and not any(c in name for c in "/\\\x00")


def _storage_reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


def export_many(
    course_keys: Iterable[CourseKey],
    on_done: Callable[[CourseKey, str | None, str | None], None],
    process_id: str = "",
) -> None:
    """Export the courses concurrently; call ``on_done(key, storage_name, error)`` as each ends.

    ``on_done`` runs in the calling thread, so it may use the database.
    """
    keys = list(course_keys)
    if not keys:
        return
    workers = max(1, min(settings.EXPORTBULK_EXPORT_CONCURRENCY, len(keys)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exportbulk") as pool:
        futures = {pool.submit(export_course, key, process_id): key for key in keys}
        for future in as_completed(futures):
            key = futures[future]
            name, error = None, None
            try:
                name = future.result()
            except ExportError as exc:
                error = str(exc)
            except Exception:  # pylint: disable=broad-except
                log.exception("Export of %s failed", key)
                error = "Export failed: an unexpected error occurred; see the server logs."
            on_done(key, name, error)
