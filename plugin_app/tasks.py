"""
Celery tasks: thin wrappers around ``lifecycle`` that make bulk work survive failures.

``run_item`` does one item of a fan-out process (an exported course), ``run_process`` a slice
of a sequential one (upload rows). ``acks_late`` with ``reject_on_worker_lost``: a task whose
worker dies is delivered again, and the lifecycle resumes (finished items are skipped, a dead
runner's item is taken over once its lease has run out). Transient errors (database, storage)
retry with backoff; once retries are exhausted the item (or the process) is marked Failed with
a reason. A delivery that finds its item or process held by another runner checks again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from django.conf import settings
from django.db import close_old_connections

from plugin_app import lifecycle, runners, sending
from plugin_app.lease import ProcessBusy
from plugin_app.storage import describe_error

if TYPE_CHECKING:
    from billiard.einfo import ExceptionInfo

log = logging.getLogger(__name__)


class BulkTask(Task[Any, None]):
    """A task of bulk work: delivered again if its worker dies, retried on transient errors."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = lifecycle.TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 60
    max_retries = 5
    fail: Callable[[Any, str], None]  # fail_item (an item id) or fail_process (a process id)
    reason = "The process could not run ({})."

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Where the worker keeps connections across tasks (CELERY_DB_REUSE_MAX), as a request
        # would: drop those past CONN_MAX_AGE or broken, before the task uses one.
        close_old_connections()

    def on_failure(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        log.error("Bulk task %s(%s) failed: %r", self.name, args[0], exc)
        close_old_connections()  # the failure may have been the database connection's
        type(self).fail(args[0], self.reason.format(describe_error(exc)))


class ItemTask(BulkTask):
    fail = staticmethod(lifecycle.fail_item)
    reason = "This course could not be run ({})."


class ProcessTask(BulkTask):
    fail = staticmethod(lifecycle.fail_process)


@shared_task(base=ItemTask, bind=True)
def run_item(self: ItemTask, item_id: int) -> None:
    try:
        runners.work_on_item(item_id)
    except ProcessBusy as busy:
        _later(self, item_id, busy)


@shared_task(base=ProcessTask, bind=True)
def run_process(self: ProcessTask, process_id: str) -> None:
    try:
        more = runners.run_process(process_id)
    except ProcessBusy as busy:
        _later(self, process_id, busy)
        return
    if more:  # to the back of the queue: other processes' tasks get a turn
        enqueue(self, process_id)


def _later(task: Task[Any, Any], arg: object, busy: ProcessBusy) -> None:
    # Not a failure: a fresh delivery, later, so that waiting uses up none of the retries.
    log.info("%s; checking again in %s s", busy, busy.retry_in)
    enqueue(task, arg, countdown=busy.retry_in)


def enqueue(task: Task[Any, Any], arg: object, countdown: float | None = None) -> None:
    """Send a task to the workers, on the configured queue (if any; else the routes decide)."""
    queue = settings.EXPORTBULK_CELERY_QUEUE or None
    # Celery takes None for both (the routes decide; no delay); celery-types wants values.
    task.apply_async(args=(arg,), queue=queue, countdown=countdown)  # type: ignore[arg-type]


# How the lifecycle sends work (``sending.connect``, from ``AppConfig.ready``).
SENDERS = sending.Senders(
    item=lambda item_id: enqueue(run_item, item_id),
    process=lambda process_id: enqueue(run_process, process_id),
    here=runners.run_now,
)
