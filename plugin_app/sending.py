"""
How a process's work is sent to the workers: the task layer's senders, and the window of a
fan-out process's items in flight (``EXPORTBULK_ITEMS_IN_FLIGHT``; fewer for a kind limited per
user), refilled as items end, with the items of a dead runner sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from plugin_app.data import ACTIVE_STATUSES, UNFINISHED, ItemStatus
from plugin_app.kinds import KINDS
from plugin_app.models import BulkItem, BulkProcess


@dataclass(frozen=True)
class Senders:
    """How work leaves for the workers: given by the task layer when the app is ready
    (``connect``), so that the lifecycle imports neither the tasks nor the runners above it."""

    item: Callable[[int], None]  # one item's task, to a worker
    process: Callable[[str], None]  # a process's own task (its plan, or a sequential slice)
    here: Callable[[str], None]  # the whole process in this thread (no broker)


_senders: list[Senders] = []


def connect(senders: Senders) -> None:
    """Use these senders from now on (``AppConfig.ready``)."""
    _senders[:] = [senders]


def senders() -> Senders:
    if not _senders:
        raise RuntimeError("The bulk lifecycle has no senders: is plugin_app in INSTALLED_APPS?")
    return _senders[0]


def send_window(process_id: str, kind: str, owner_id: int) -> None:
    """Send the next pending items, keeping at most ``EXPORTBULK_ITEMS_IN_FLIGHT`` sent and unfinished
    (and, for a kind limited per user, at most its ``per_user_in_flight`` of the owner's)."""
    per_user = KINDS[kind].per_user_in_flight
    with transaction.atomic():
        if per_user:  # the owner's windows take turns, locked in start()'s order: user, process
            list(get_user_model().objects.select_for_update().filter(pk=owner_id).values_list("pk"))
        process = (
            BulkProcess.objects.select_for_update()
            .filter(process_id=process_id, status__in=ACTIVE_STATUSES, canceled_at__isnull=True)
            .first()
        )
        if process is None:
            return
        _resend_orphans(process)
        sent = process.items.filter(position__lte=process.dispatched_up_to, status__in=UNFINISHED).count()
        room = settings.EXPORTBULK_ITEMS_IN_FLIGHT - sent
        if per_user:
            room = min(room, per_user() - _owner_in_flight(process))
        if room <= 0:
            return
        batch = list(
            process.items.filter(position__gt=process.dispatched_up_to, status=ItemStatus.PENDING)
            .order_by("position")
            .values_list("id", "position")[:room]
        )
        if not batch:
            return
        # The cursor is written first (the database may refuse it: then nothing is sent), and
        # commits once the tasks are sent (a failed send rolls it back).
        BulkProcess.objects.filter(pk=process.pk).update(dispatched_up_to=batch[-1][1])
        for item_id, _ in batch:
            senders().item(item_id)


def _owner_in_flight(process: BulkProcess) -> int:
    """The items of the process's kind its owner has sent to the workers and not finished."""
    return BulkItem.objects.filter(
        process__owner_id=process.owner_id,
        process__kind=process.kind,
        process__status__in=ACTIVE_STATUSES,
        position__lte=F("process__dispatched_up_to"),
        status__in=UNFINISHED,
    ).count()


def send_windows(process: BulkProcess) -> None:
    """Send the process's next window; for a kind limited per user, then the windows of the owner's
    other processes of that kind, oldest first: an item that ended here made room for theirs."""
    send_window(process.process_id.hex, process.kind, process.owner_id)
    if not KINDS[process.kind].per_user_in_flight:
        return
    others = (
        BulkProcess.objects.filter(owner_id=process.owner_id, kind=process.kind, status__in=ACTIVE_STATUSES)
        .exclude(pk=process.pk)
        .order_by("created", "id")
        .values_list("process_id", flat=True)
    )
    for other in others:
        send_window(other.hex, process.kind, process.owner_id)


def _resend_orphans(process: BulkProcess) -> None:
    """Send again the items whose runner died (their lease ran out), without waiting for the broker.

    The broker redelivers a dead worker's task only after its visibility timeout (an hour on
    Redis by default); the next item of the process to end does it as soon as the lease is over.
    A runner that was only slow cannot save over the new one: ``finish_item`` checks the attempt.
    """
    now = timezone.now()
    orphans = list(
        process.items.filter(status=ItemStatus.RUNNING, lease_expires__lt=now).values_list("id", flat=True)
    )
    if orphans:
        BulkItem.objects.filter(id__in=orphans, status=ItemStatus.RUNNING, lease_expires__lt=now).update(
            status=ItemStatus.PENDING, lease_expires=None
        )
        for item_id in orphans:
            senders().item(item_id)
