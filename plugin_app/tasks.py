"""
Celery tasks: thin wrappers around ``api`` that make bulk work survive failures.

``acks_late`` with ``reject_on_worker_lost``: a task whose worker dies is delivered again,
and the API resumes it (finished items are skipped). Transient errors (database, storage)
retry with backoff; once retries are exhausted the process is marked Failed with a reason.
A delivery that finds its process held by another runner (``lease``) checks again later.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import close_old_connections

from plugin_app import api
from plugin_app.lease import ProcessBusy

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
        close_old_connections()  # the failure may have been the database connection's
        api.fail_process(args[0], f"The process could not run ({type(exc).__name__}).")


@shared_task(base=BulkTask, bind=True)
def run_export(self: BulkTask, process_id: str) -> None:
    _run(self, api.run_export, process_id)


@shared_task(base=BulkTask, bind=True)
def run_upload(self: BulkTask, process_id: str) -> None:
    _run(self, api.run_upload, process_id)


def _run(task: BulkTask, run, process_id: str) -> None:
    try:
        run(process_id)
    except ProcessBusy as busy:
        # Not a failure: a fresh delivery, later, so that waiting uses up none of the retries.
        log.info("%s; checking again in %s s", busy, busy.retry_in)
        enqueue(task, process_id, countdown=busy.retry_in)


def enqueue(task, process_id: str, countdown: float | None = None) -> None:
    """Send the process to the workers, on the configured queue (if any)."""
    queue = settings.EXPORTBULK_CELERY_QUEUE or None
    task.apply_async(args=[process_id], queue=queue, countdown=countdown)
