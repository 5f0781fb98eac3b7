"""
The lifecycle every kind of bulk process shares: start, fan out, claim, finish, cancel.
(How a worker runs the items it claims is ``runners``'; how work is sent to the workers, ``sending``'.)

A process and its items are recorded in one transaction, then sent to the workers. Fan-out
kinds send one Celery task per item, a window at a time (``EXPORTBULK_ITEMS_IN_FLIGHT``), so
that every worker process and pod on the queue takes a share while concurrent processes take
turns in it. Sequential kinds (upload rows, whose order matters) run in one task that hands its
worker back every few seconds. An item is claimed with one conditional UPDATE and held by a
renewed lease: a redelivered task never runs it twice at once, and a dead worker's item is
taken over once its lease has run out. Counts are counted from the items; the process ends
exactly once, under the process lease, with its report.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, InterfaceError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from plugin_app import storage
from plugin_app.data import (
    ACTIVE_STATUSES,
    UNFINISHED,
    ItemOutcome,
    ItemStatus,
    ProcessInfo,
    ProcessKind,
    ProcessStatus,
)
from plugin_app.kinds import KINDS, spec_of
from plugin_app.lease import ProcessBusy, expiry, leased
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.report import write_report
from plugin_app.sending import send_window, send_windows, senders
from plugin_app.status import get_process, owned_process

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

# Errors worth running the item again for: the item itself may well be fine.
TRANSIENT_ERRORS = (DatabaseError, InterfaceError, BotoCoreError, ClientError, ConnectionError)
# What a storage that refuses a write raises (S3 or the local disk).
_STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)
# When a user over the quota is told to come back: about the time a small process takes.
RETRY_AFTER_SECONDS = 30
EVERY_ITEM_FAILED = "Every item failed; see each one's reason."
GAVE_UP = "Given up after {} attempts: the item failed or its worker died each time."


class QuotaExceeded(Exception):
    """The user has as many active processes as allowed; nothing was recorded."""

    def __init__(self, active: int, limit: int, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(
            f"You have {active} active bulk processes; at most {limit} may be queued or running at once. "
            f"Retry in {retry_after} seconds, or cancel one."
        )
        self.retry_after = retry_after


class QueueUnavailable(Exception):
    """The broker refused the process's tasks; nothing was recorded."""

    def __init__(self) -> None:
        super().__init__("The task queue's broker is unreachable; nothing was started. Try again later.")


# Starting -----------------------------------------------------------------------------------


def check_quota(user: User) -> None:
    """Raise QuotaExceeded when the user may start no more process now."""
    limit = settings.EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER
    active = BulkProcess.objects.filter(owner=user, status__in=ACTIVE_STATUSES).count()
    if limit and active >= limit:
        raise QuotaExceeded(active, limit)


def start(
    user: User,
    kind: ProcessKind,
    items: list[BulkItem],
    options: dict[str, Any] | None = None,
    *,
    send: bool = True,
    **fields: Any,
) -> str:
    """Record a process of its items and (``send``) send it to the workers; return its id.

    Items already decided (refused at request time) come FAILED with their reason; when every
    item is decided, the process ends here, before the answer (no worker has anything to do).
    Raises QuotaExceeded or QueueUnavailable, and then nothing is recorded; any other error
    discards the process too, so that a request that failed leaves none behind.
    """
    now = timezone.now()
    for item in items:
        if item.status != ItemStatus.PENDING:
            item.finished_at = item.finished_at or now
    with transaction.atomic():
        # One user's requests take turns here, so that two at once cannot both take the last place.
        list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
        check_quota(user)
        process = BulkProcess.objects.create(kind=kind, owner=user, options=options or {}, **fields)
        for item in items:
            item.process = process
        BulkItem.objects.bulk_create(items)
    process_id = process.process_id.hex
    if all(item.status != ItemStatus.PENDING for item in items):
        _end_settled(process_id)
    elif send:
        try:
            dispatch(process_id)
        except BrokerError as exc:
            log.error("Could not queue bulk process %s: %s", process_id, exc)
            _discard(process_id)
            raise QueueUnavailable() from exc
        except BaseException:
            _discard(process_id)
            raise
    return process_id


def _end_settled(process_id: str) -> None:
    """End a process whose every item was settled at request time (nothing to send)."""
    try:
        maybe_finish(process_id)
    except TRANSIENT_ERRORS as exc:  # e.g. the bucket refuses the report: ended all the same
        log.warning("Bulk process %s could not end normally: %r", process_id, exc)
        fail_process(process_id, f"The process could not store its outcome ({type(exc).__name__}).")


def _discard(process_id: str) -> None:
    """Remove a process that its request could not start, best effort (the database may be what failed)."""
    try:
        process = BulkProcess.objects.filter(process_id=process_id).first()
        if process:
            _remove_content(process)
            process.delete()
    except TRANSIENT_ERRORS as exc:
        log.error("Could not discard bulk process %s: %r", process_id, exc)


def dispatch(process_id: str) -> None:
    """Send the process to the workers: its first window of items, or its one sequential task."""
    from celery import current_app

    spec = spec_of(process_id)
    if current_app.conf.task_always_eager:  # no broker (tests, a standalone server without one)
        senders().here(process_id)
    elif spec.fan_out and not spec.plan:
        send_items(process_id)  # ends it at once when every item was refused at request time
    else:  # planned in a worker, not in the request that started the process
        senders().process(process_id)


def send_items(process_id: str) -> None:
    """Send the first window of a fan-out process, and end it if nothing is left to send."""
    row = BulkProcess.objects.filter(process_id=process_id).values("kind", "owner_id").first()
    if row:
        send_window(process_id, row["kind"], row["owner_id"])
    maybe_finish(process_id)


# Running items ------------------------------------------------------------------------------


def _claimable(takeover: bool) -> Q:
    if takeover:  # the caller holds the process: a running item is a dead runner's
        return Q(status__in=UNFINISHED)
    return Q(status=ItemStatus.PENDING) | Q(status=ItemStatus.RUNNING, lease_expires__lt=timezone.now())


def claim_items(item_ids: list[int], takeover: bool = False) -> list[BulkItem]:
    """Claim those of the items that are free, in one UPDATE; the ones claimed, with their process.

    Free items already claimed ``EXPORTBULK_MAX_ITEM_ATTEMPTS`` times fail instead: the count is
    the database's, so that no redelivery by the broker (nor a retry count it resets) runs an
    item for ever.
    """
    limit = settings.EXPORTBULK_MAX_ITEM_ATTEMPTS
    if limit:
        exhausted = BulkItem.objects.filter(_claimable(takeover), id__in=item_ids, attempts__gte=limit)
        exhausted.update(
            status=ItemStatus.FAILED,
            error=GAVE_UP.format(limit),
            finished_at=timezone.now(),
            lease_expires=None,
        )
    claimed = BulkItem.objects.filter(_claimable(takeover), id__in=item_ids).update(
        status=ItemStatus.RUNNING, lease_expires=expiry(), attempts=F("attempts") + 1
    )
    if not claimed:
        return []
    items = list(
        BulkItem.objects.select_related("process", "process__owner")
        .filter(id__in=item_ids, status=ItemStatus.RUNNING)
        .order_by("position")
    )
    if not items:  # canceled between the two statements
        return []
    process = items[0].process
    if process.status not in ACTIVE_STATUSES or process.canceled_at:
        # Ended or canceled meanwhile: what would have run is not to run.
        status = ItemStatus.CANCELED if process.canceled_at else ItemStatus.PENDING
        BulkItem.objects.filter(id__in=[i.id for i in items]).update(status=status, lease_expires=None)
        return []
    now = timezone.now()
    BulkProcess.objects.filter(pk=process.pk, status=ProcessStatus.QUEUED).update(
        status=ProcessStatus.PROCESSING, started_at=Coalesce("started_at", now)
    )
    return items


def claim_item(item_id: int, takeover: bool = False) -> BulkItem | None:
    """The item, now held by the caller; None when another runner holds it or it has ended."""
    items = claim_items([item_id], takeover)
    return items[0] if items else None


def finish_item(item: BulkItem, outcome: ItemOutcome, *, end: bool = True) -> bool:
    """Save the outcome if the caller still holds the item; then (``end``) let the process end.

    Returns whether the outcome was saved.
    """
    saved = BulkItem.objects.filter(id=item.id, status=ItemStatus.RUNNING, attempts=item.attempts).update(
        status=outcome.status,
        result=outcome.result,
        error=outcome.error,
        finished_at=timezone.now(),
        lease_expires=None,
    )
    if saved:
        log.info(
            "Bulk item %s (%s) of process %s ended %s",
            item.id,
            item.course_id,
            item.process.process_id.hex,
            outcome.status,
        )
    else:
        log.warning("Item %s was taken over or canceled; its outcome is not saved.", item.id)
    if end:
        if KINDS[item.process.kind].fan_out:
            send_windows(item.process)
        maybe_finish(item.process.process_id.hex)
    return bool(saved)


def finish_pending(outcomes: dict[int, ItemOutcome]) -> None:
    """Save the outcomes of items (by id) that are still pending, in one transaction: the
    ``plan`` of a kind. An item claimed or canceled meanwhile keeps its own outcome."""
    if not outcomes:
        return
    now = timezone.now()
    with transaction.atomic():
        items = list(BulkItem.objects.select_for_update().filter(id__in=outcomes, status=ItemStatus.PENDING))
        for item in items:
            outcome = outcomes[item.id]
            item.status, item.result, item.error = outcome.status, outcome.result, outcome.error
            item.finished_at = now
        BulkItem.objects.bulk_update(items, ["status", "result", "error", "finished_at"], batch_size=500)
    log.info("%s bulk items settled before fan-out", len(items))


def fail_item(item_id: int, reason: str) -> None:
    """Fail an item whose task gave up (retries exhausted), then let its process end."""
    item = BulkItem.objects.select_related("process").filter(id=item_id).first()
    if item is None:
        return
    BulkItem.objects.filter(id=item_id, status__in=UNFINISHED).update(
        status=ItemStatus.FAILED, error=reason, finished_at=timezone.now(), lease_expires=None
    )
    if KINDS[item.process.kind].fan_out:
        send_windows(item.process)  # its place in the window goes to the next item
    with contextlib.suppress(ProcessBusy):
        maybe_finish(item.process.process_id.hex)


# Ending -------------------------------------------------------------------------------------


def maybe_finish(process_id: str) -> None:
    """End the process when none of its items is pending or running; exactly once.

    Raises ProcessBusy when another runner holds the process (it ends it, or its lease runs out).
    """
    if BulkItem.objects.filter(process__process_id=process_id, status__in=UNFINISHED).exists():
        return
    with leased(process_id, start=False) as process:
        if process is None or process.items.filter(status__in=UNFINISHED).exists():
            return
        end_process(process)


def end_process(process: BulkProcess) -> None:
    """Run the kind's last step, store the report, then set the final status (the caller holds the lease)."""
    spec = KINDS[process.kind]
    if spec.before_finish:
        spec.before_finish(process)
    # Before the final status, so that an ended process has nothing left to do.
    _remove_content(process)
    if BulkProcess.objects.filter(pk=process.pk, canceled_at__isnull=False).exists():
        status, error = ProcessStatus.CANCELED, ""
    elif process.items.exists() and not process.items.exclude(status=ItemStatus.FAILED).exists():
        status, error = ProcessStatus.FAILED, EVERY_ITEM_FAILED
    else:
        status, error = ProcessStatus.COMPLETED, ""
    # The outcome is in the database (the status API shows it): an unreachable bucket must not
    # leave the process unfinished.
    refusal = _store_report(process)
    BulkProcess.objects.filter(pk=process.pk, status__in=ACTIVE_STATUSES).update(
        status=status,
        finished_at=timezone.now(),
        report_name=process.report_name,
        error=" ".join(filter(None, (error, refusal))),
    )


def _store_report(process: BulkProcess) -> str:
    """Store the report of the process (``report_name``); "" when stored, else why not (logged)."""
    spec = KINDS.get(process.kind)
    try:
        process.report_name = write_report(process, spec.report_rows if spec else None)
    except _STORAGE_ERRORS as exc:
        log.warning("Could not store the report of bulk process %s: %r", process.process_id.hex, exc)
        reason = storage.describe_error(exc)
        return f"The report could not be stored ({reason}); each item's outcome is in its status."
    return ""


def _remove_content(process: BulkProcess) -> None:
    """Delete what was uploaded for the process, if anything."""
    if process.content_name:
        storage.get_storage().delete(process.content_name)
    remove_staged = KINDS[process.kind].remove_staged
    if remove_staged:
        remove_staged(process)


def fail_process(process_id: str, reason: str) -> None:
    """Mark a process that could not run as Failed, with a reason safe to show.

    The items done so far are reported and the uploaded content is removed, as far as the
    storage allows: it may be what failed.
    """
    failed = BulkProcess.objects.filter(process_id=process_id, status__in=ACTIVE_STATUSES).update(
        status=ProcessStatus.FAILED, error=reason, finished_at=timezone.now()
    )
    if not failed:
        return
    process = BulkProcess.objects.get(process_id=process_id)
    try:
        refusal = _store_report(process)
        process.error = " ".join(filter(None, (reason, refusal)))
        process.save(update_fields=["report_name", "error"])
        _remove_content(process)
    except TRANSIENT_ERRORS as exc:
        log.warning("Could not clean up after failed bulk process %s: %r", process_id, exc)


# Canceling ----------------------------------------------------------------------------------


def is_canceled(process_id: str) -> bool:
    """Whether the process's owner asked to cancel it (one indexed lookup)."""
    return BulkProcess.objects.filter(process_id=process_id, canceled_at__isnull=False).exists()


def cancel(user: User, kind: ProcessKind, process_id: str) -> ProcessInfo:
    """Cancel the user's process: items not started are canceled, running ones finish.

    Returns the process as it stands (still active while running items finish). Raises
    ProcessNotFound for unknown ids and other users' ids alike.
    """
    process = owned_process(user, kind, process_id)
    if process.status in ACTIVE_STATUSES:
        now = timezone.now()
        BulkProcess.objects.filter(pk=process.pk, canceled_at__isnull=True).update(canceled_at=now)
        # Pending items, and running ones whose runner is gone (lease expired).
        process.items.filter(
            Q(status=ItemStatus.PENDING) | Q(status=ItemStatus.RUNNING, lease_expires__lt=now)
        ).update(status=ItemStatus.CANCELED, finished_at=now, lease_expires=None)
        with contextlib.suppress(ProcessBusy):  # its runner ends it
            maybe_finish(process_id)
        if KINDS[process.kind].fan_out:
            send_windows(process)  # its items' places go to the owner's other processes
    return get_process(user, kind, process_id)
