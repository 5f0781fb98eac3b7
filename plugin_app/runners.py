"""
How items run: one claimed item in a worker's task (fan-out), a slice of a sequential process in
order and in batches, or a whole process here and now (a synchronous request, no broker).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connections, transaction
from django.utils import timezone

from plugin_app.data import UNFINISHED, ItemOutcome, ItemStatus
from plugin_app.kinds import KINDS, KindSpec, spec_of
from plugin_app.lease import ProcessBusy, leased, renewing
from plugin_app.lifecycle import (
    TRANSIENT_ERRORS,
    claim_item,
    claim_items,
    end_process,
    finish_item,
    is_canceled,
    maybe_finish,
    send_items,
)
from plugin_app.models import BulkItem, BulkProcess

log = logging.getLogger(__name__)

# A sequential run gives its worker back after this long, so that other processes get a turn.
SLICE_SECONDS = 10
# Items of one course that a sequential run does under one ``KindSpec.batch``.
BATCH_ITEMS = 100
UNEXPECTED = "Unexpected error; see the server logs."
# Set in the thread of a worker's task, whose items a cancel may stop half-way (``cancel_check``).
_watched = threading.local()


def outcome_of(spec: KindSpec, item: BulkItem) -> ItemOutcome:
    """Run one item; an unexpected error fails the item (logged), a transient one is raised."""
    try:
        return spec.run_item(item.process, item)
    except TRANSIENT_ERRORS:
        raise
    except Exception:  # pylint: disable=broad-except
        log.exception("Item %s of bulk process %s failed", item.position, item.process.process_id.hex)
        return ItemOutcome(ItemStatus.FAILED, error=UNEXPECTED)


def _refused(spec: KindSpec, process: BulkProcess, course_id: str) -> ItemOutcome | None:
    """A failed outcome when the owner may no longer run the course's items, else None."""
    reason = spec.refusal(process, course_id) if spec.refusal else ""
    return ItemOutcome(ItemStatus.FAILED, error=reason) if reason else None


def _release(items: list[BulkItem]) -> None:
    """Give items back (a transient error: their task runs again); best effort, leases expire anyway."""
    with contextlib.suppress(DatabaseError, InterfaceError):
        for item in items:
            BulkItem.objects.filter(id=item.id, status=ItemStatus.RUNNING, attempts=item.attempts).update(
                status=ItemStatus.PENDING, lease_expires=None
            )


def work_on_item(item_id: int) -> None:
    """Run one item of a fan-out process: the body of its Celery task.

    Raises ProcessBusy when another runner holds the item (look again once its lease has run
    out: its holder may have died) or is ending the process.
    """
    item = claim_item(item_id)
    if item is None:
        row = (
            BulkItem.objects.filter(id=item_id)
            .values("status", "lease_expires", "process__process_id")
            .first()
        )
        if row is None:
            return
        if row["status"] == ItemStatus.RUNNING:
            left = (row["lease_expires"] - timezone.now()).total_seconds() if row["lease_expires"] else 0
            raise ProcessBusy(row["process__process_id"].hex, max(1, int(left) + 1))
        # A late delivery, or an item given up: the window moves on, and the process ends if done.
        send_items(row["process__process_id"].hex)
        return
    held = BulkItem.objects.filter(id=item.id, status=ItemStatus.RUNNING, attempts=item.attempts)
    spec = KINDS[item.process.kind]
    _watched.on = True
    try:
        with renewing(held):
            outcome = _refused(spec, item.process, item.course_id) or outcome_of(spec, item)
    except TRANSIENT_ERRORS:
        _release([item])
        raise
    finally:
        _watched.on = False
    finish_item(item, outcome)


def run_process(process_id: str) -> bool:
    """The body of a process's own task: a slice of a sequential process (True: send the task
    again), or the plan of a fan-out process, then its items' first window.

    Raises ProcessBusy when another runner holds the process.
    """
    if not spec_of(process_id).fan_out:
        return run_sequential(process_id)
    plan(process_id)
    send_items(process_id)
    return False


def plan(process_id: str) -> None:
    """Let the kind settle what it can of the process in bulk (``KindSpec.plan``), under its lease.

    A plan only saves work: whatever fails it (the database, the bucket, a bug), every item runs
    as usual.
    """
    spec = spec_of(process_id)
    if spec.plan:
        with leased(process_id) as process:
            if process is not None and not process.canceled_at:
                try:
                    spec.plan(process)
                except Exception:  # pylint: disable=broad-except
                    log.exception("Bulk process %s runs every item: its plan failed", process_id)


def run_sequential(process_id: str, time_slice: float | None = SLICE_SECONDS) -> bool:
    """Run the pending items of a sequential process in order, for about ``time_slice`` seconds.

    Returns True when items remain (send the task again: other processes get a turn first).
    Raises ProcessBusy when another runner holds the process.
    """
    deadline = time.monotonic() + time_slice if time_slice else None
    with leased(process_id) as process:
        if process is None:
            return False
        spec = KINDS[process.kind]
        items = list(process.items.filter(status__in=UNFINISHED).order_by("position"))
        running = BulkItem.objects.filter(process=process, status=ItemStatus.RUNNING)
        with renewing(running), spec.session(process) if spec.session and items else _nothing():
            for batch in _batches(items):
                if is_canceled(process_id) or (deadline and time.monotonic() > deadline):
                    break
                _run_batch(spec, process, batch)
        if BulkItem.objects.filter(process=process, status__in=UNFINISHED).exists():
            return True
        end_process(process)
    return False


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _batches(items: list[BulkItem]) -> Iterator[list[BulkItem]]:
    """Consecutive items of one course, at most BATCH_ITEMS at a time."""
    batch: list[BulkItem] = []
    for item in items:
        if batch and (item.course_id != batch[0].course_id or len(batch) == BATCH_ITEMS):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _run_batch(spec: KindSpec, process: BulkProcess, batch: list[BulkItem]) -> None:
    claimed = claim_items([item.id for item in batch], takeover=True)
    if not claimed:
        return
    for item in claimed:
        item.process = process  # the run's process, whose session the kind may have opened
    outcomes = []
    try:
        refused = _refused(spec, process, batch[0].course_id)
        if refused:
            outcomes = [refused] * len(claimed)
        else:
            with spec.batch(process, batch[0].course_id) if spec.batch else _nothing():
                outcomes = [outcome_of(spec, item) for item in claimed]
    except TRANSIENT_ERRORS:
        _release(claimed)
        raise
    with transaction.atomic():  # one commit for the batch's outcomes, saved once its work is on disk
        for item, outcome in zip(claimed, outcomes, strict=True):
            finish_item(item, outcome, end=False)


def _in_thread(spec: KindSpec, item: BulkItem) -> ItemOutcome:
    try:
        return outcome_of(spec, item)
    finally:
        connections.close_all()  # the backend may have used the database from this pool thread


def run_now(process_id: str) -> None:
    """Run the whole process here and now (synchronous export, no broker, tests).

    Fan-out kinds run ``EXPORTBULK_EXPORT_CONCURRENCY`` items at a time in threads: they pay
    where the backend's work releases the GIL (file reads, compression, network).
    """
    spec = spec_of(process_id)
    if not spec.fan_out:
        run_sequential(process_id, time_slice=None)
        return
    plan(process_id)
    ids = list(
        BulkItem.objects.filter(process__process_id=process_id, status=ItemStatus.PENDING)
        .order_by("position")
        .values_list("id", flat=True)
    )
    claimed = claim_items(ids) if ids else []
    if claimed:
        workers = max(1, min(settings.EXPORTBULK_EXPORT_CONCURRENCY, len(claimed)))
        if spec.per_user_in_flight:  # no broker to hold the rest back: fewer threads
            workers = max(1, min(workers, spec.per_user_in_flight()))
        running = BulkItem.objects.filter(id__in=[i.id for i in claimed], status=ItemStatus.RUNNING)
        with renewing(running), ThreadPoolExecutor(workers, thread_name_prefix="exportbulk") as pool:
            futures = {pool.submit(_in_thread, spec, item): item for item in claimed}
            for future in as_completed(futures):
                finish_item(futures[future], future.result(), end=False)
    maybe_finish(process_id)


def cancel_check(process: BulkProcess) -> Callable[[], bool] | None:
    """For long writers: a check of ``is_canceled``, or None when run by ``run_now``.

    ``run_now`` runs a synchronous request (whose id the caller learns only at its end) in pool
    threads, which must not touch the database.
    """
    if not getattr(_watched, "on", False):
        return None
    process_id = process.process_id.hex
    return lambda: is_canceled(process_id)
