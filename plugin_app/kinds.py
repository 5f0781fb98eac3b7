"""
The kinds of bulk process (export, upload, backup, restore): what the lifecycle, the runners and
the status API need to know of each. Each kind's module defines its ``SPEC``; the app registers
them when Django is ready (``apps.ExportBulkConfig.ready``), so that nothing below the kinds
imports them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugin_app.data import ItemOutcome, ProcessKind
from plugin_app.models import BulkItem, BulkProcess


@dataclass(frozen=True)
class KindSpec:
    """What the lifecycle needs to know of one kind of process."""

    kind: ProcessKind
    run_item: Callable[[BulkProcess, BulkItem], ItemOutcome]  # one item; may raise TRANSIENT_ERRORS
    fan_out: bool = True  # False: items run in order inside one task (upload rows)
    before_finish: Callable[[BulkProcess], None] | None = None  # once, before the final status
    # Fan-out kinds: settle what it can of the pending items in bulk (``finish_pending``), under
    # the process lease, before they fan out: cheaper than a task each for items with nothing to do.
    plan: Callable[[BulkProcess], None] | None = None
    # An item as the status API shows it.
    present_item: Callable[[BulkItem, bool], dict[str, Any]] | None = None
    # Report columns and rows; None: course_id, status, error and the item's result.
    report_rows: Callable[[BulkProcess], tuple[list[str], list[list[str]]]] | None = None
    # Sequential kinds: around a whole run (e.g. the open content archive) ...
    session: Callable[[BulkProcess], contextlib.AbstractContextManager[Any]] | None = None
    # ... and around consecutive items of one course (items count as done once it has exited).
    batch: Callable[[BulkProcess, str], contextlib.AbstractContextManager[Any]] | None = None
    # What the process stored for itself besides ``content_name`` (e.g. staged uploads): removed
    # when the process ends, however it ends (completed, canceled, failed or never queued).
    remove_staged: Callable[[BulkProcess], None] | None = None
    # Fan-out kinds whose items are heavy (a restore unpacks a tarball): how many items of the kind
    # one user may have in the workers at once, all their processes together.
    per_user_in_flight: Callable[[], int] | None = None
    # Why the owner may no longer run an item of this course (a sentence), or "": asked when a
    # worker claims an item, and for each batch of a sequential kind, since access may have been
    # withdrawn while the work waited in the queue.
    refusal: Callable[[BulkProcess, str], str] | None = None


KINDS: dict[str, KindSpec] = {}


def register(spec: KindSpec) -> None:
    """Make a kind known (``AppConfig.ready``)."""
    KINDS[spec.kind] = spec


def spec_of(process_id: str) -> KindSpec:
    return KINDS[BulkProcess.objects.values_list("kind", flat=True).get(process_id=process_id)]
