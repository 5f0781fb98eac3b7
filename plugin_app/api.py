"""
The Python API of bulk export and bulk upload: what views, tasks and other apps call.

Each kind of process lives in a module of its own (``exports``, ``uploads``, ``restores``); the lifecycle
they share (start, fan-out, claim, finish, cancel, quotas) lives in ``lifecycle``.
"""

from plugin_app.data import UploadMode
from plugin_app.exports import PERMISSION_DENIED, authorable_courses, create_export
from plugin_app.lifecycle import (
    TRANSIENT_ERRORS,
    QueueUnavailable,
    QuotaExceeded,
    cancel,
    fail_process,
)
from plugin_app.restore_requests import RestoreRejected
from plugin_app.restore_requests import parse_items as parse_restore_items
from plugin_app.restores import create_restore
from plugin_app.runners import run_now
from plugin_app.status import ProcessNotFound, get_process, list_processes
from plugin_app.uploads import UploadRejected, create_upload

__all__ = [
    "PERMISSION_DENIED", "TRANSIENT_ERRORS", "ProcessNotFound", "QueueUnavailable", "QuotaExceeded",
    "UploadMode", "UploadRejected", "authorable_courses", "cancel", "create_export", "create_upload",
    "fail_process", "get_process", "list_processes", "run_now",
    "RestoreRejected", "create_restore", "parse_restore_items",
]  # fmt: skip
