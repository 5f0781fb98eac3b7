"""
Leases: one runner per process (sequential kinds) or per item (fan-out), even when the broker
delivers a task twice.

Celery on Redis delivers an unacknowledged task again once its visibility timeout has passed,
even to a second worker while the first is still running it (a long export can outlast the
timeout), and a worker killed mid-task leaves its task to be delivered again. A runner holds a
lease on what it runs, renewed in the background while it works: another delivery that finds
the lease held waits for it to end or to expire (its holder died), then takes over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from plugin_app.data import ACTIVE_STATUSES, ProcessStatus
from plugin_app.models import BulkProcess

log = logging.getLogger(__name__)

_RUNNING = list(ACTIVE_STATUSES)


class ProcessBusy(Exception):
    """Another runner holds the process; try again in ``retry_in`` seconds."""

    def __init__(self, process_id: str, retry_in: int):
        super().__init__(f"Bulk process {process_id} is being run elsewhere.")
        self.retry_in = retry_in


def expiry() -> datetime:
    """When a lease taken or renewed now runs out."""
    return timezone.now() + timedelta(seconds=settings.EXPORTBULK_LEASE_SECONDS)


@contextlib.contextmanager
def leased(process_id: str, start: bool = True) -> Iterator[BulkProcess | None]:
    """The process, held for the ``with`` block; None when it has already ended.

    ``start``: the holder runs the process, whose start time is then set if it had none; one
    that only ends it (all canceled) leaves it unset: the process never started.
    Raises ProcessBusy when another runner holds it.
    """
    now = timezone.now()
    claimed = (
        BulkProcess.objects.filter(process_id=process_id, status__in=_RUNNING)
        .filter(Q(lease_expires__isnull=True) | Q(lease_expires__lt=now))
        .update(
            status=ProcessStatus.PROCESSING,
            started_at=Coalesce("started_at", now) if start else F("started_at"),
            lease_expires=expiry(),
        )
    )
    if not claimed:
        if BulkProcess.objects.filter(process_id=process_id, status__in=_RUNNING).exists():
            raise ProcessBusy(process_id, settings.EXPORTBULK_LEASE_SECONDS)
        yield None
        return
    held = BulkProcess.objects.filter(process_id=process_id)
    try:
        with renewing(held):
            yield BulkProcess.objects.select_related("owner").get(process_id=process_id)
    finally:
        # The work may have ended on a dead connection; an expired lease is as good as a released one.
        connection.close_if_unusable_or_obsolete()
        with contextlib.suppress(DatabaseError, InterfaceError):
            held.update(lease_expires=None)


@contextlib.contextmanager
def renewing(held: QuerySet[Any]) -> Iterator[None]:
    """Keep the leases of the rows ``held`` selects alive while the ``with`` block runs."""
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(held, stop), daemon=True, name="exportbulk-lease")
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()


def _renew(held: QuerySet[Any], stop: threading.Event) -> None:
    """Push the leases' end forward until told to stop (a third of the lease, each time)."""
    try:
        while not stop.wait(settings.EXPORTBULK_LEASE_SECONDS / 3):
            try:
                held.update(lease_expires=expiry())
            except (DatabaseError, InterfaceError) as exc:
                log.warning("Could not renew a lease of bulk work: %r", exc)
                connection.close()
    finally:
        connection.close()
