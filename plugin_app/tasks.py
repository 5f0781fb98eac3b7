"""
Celery tasks: thin wrappers around ``api`` that make bulk work survive failures.

``acks_late`` with ``reject_on_worker_lost``: a task whose worker dies is delivered again,
and the API resumes it (finished items are skipped). Transient errors (database, storage)
retry with backoff; once retries are exhausted the process is marked Failed with a reason.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings

from plugin_app import api

log = logging.getLogger(__name__)


class BulkTask(Task):
    """A bulk process task; when it gives up, the process is marked Failed."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = api.TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 60
    max_retries = 5

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        log.error("Bulk process %s failed: %r", args[0], exc)
        api.fail_process(args[0], f"The process could not run ({type(exc).__name__}).")


@shared_task(base=BulkTask)
def run_export(process_id: str) -> None:
    api.run_export(process_id)


@shared_task(base=BulkTask)
def run_upload(process_id: str) -> None:
    api.run_upload(process_id)


def enqueue(task, process_id: str) -> None:
    """Send the process to the workers, on the configured queue (if any)."""
    queue = settings.EXPORTBULK_CELERY_QUEUE or None
    task.apply_async(args=[process_id], queue=queue)
