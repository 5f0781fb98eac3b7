"""
Processes as the status APIs show them: counts counted from the items, so that the status
always agrees with the report, in two queries whatever the number of items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet

from plugin_app import storage
from plugin_app.data import ItemStatus, ProcessInfo, ProcessKind, ProcessStatus
from plugin_app.kinds import KINDS
from plugin_app.models import BulkProcess

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_stubs_ext import WithAnnotations

_ENDED = (ProcessStatus.COMPLETED, ProcessStatus.FAILED, ProcessStatus.CANCELED)
# The lifecycle stores a report whenever a process ends; only a storage that refuses it stops it.
NOT_STORED = "The report could not be stored (see error); each item's outcome is in this status."


class ProcessNotFound(Exception):
    """No process with that id belongs to the user (unknown and foreign ids look the same)."""


class _Counts(TypedDict):
    total_count: int
    success_count: int
    failed_count: int
    canceled_count: int


def _with_counts(processes: QuerySet[BulkProcess]) -> QuerySet[WithAnnotations[BulkProcess, _Counts]]:
    return processes.annotate(
        total_count=Count("items"),
        success_count=Count("items", filter=Q(items__status=ItemStatus.SUCCESS)),
        failed_count=Count("items", filter=Q(items__status=ItemStatus.FAILED)),
        canceled_count=Count("items", filter=Q(items__status=ItemStatus.CANCELED)),
    )


def _info(process: WithAnnotations[BulkProcess, _Counts], detail: bool) -> ProcessInfo:
    """The process as the APIs show it; ``detail`` adds download URLs (presigned: worth skipping in lists)."""
    successful = failed = items = None
    ended = process.status in _ENDED
    if detail and process.kind == ProcessKind.EXPORT and ended:
        done = process.items.filter(status__in=[ItemStatus.SUCCESS, ItemStatus.FAILED])
        successful = {
            i.course_id: storage.download_url(i.result["object"])
            for i in done
            if i.status == ItemStatus.SUCCESS
        }
        failed = {i.course_id: i.error for i in done if i.status == ItemStatus.FAILED}
    spec = KINDS.get(process.kind)
    if detail and spec and spec.present_item:
        items = [spec.present_item(item, ended) for item in process.items.order_by("position")]
    return ProcessInfo(
        process_id=process.process_id.hex,
        kind=process.kind,
        owner_id=process.owner_id,
        status=process.status,
        mode=process.mode,
        created=process.created,
        started_at=process.started_at,
        finished_at=process.finished_at,
        total_count=process.total_count,
        success_count=process.success_count,
        failed_count=process.failed_count,
        canceled_count=process.canceled_count,
        error=process.error,
        report_url=storage.download_url(process.report_name) if detail and process.report_name else None,
        report_missing=NOT_STORED if ended and not process.report_name else "",
        successful_uploads=successful,
        failed_uploads=failed,
        items=items,
    )


def owned_process(user: User, kind: ProcessKind, process_id: str) -> BulkProcess:
    """The user's process of that kind; ProcessNotFound for unknown ids and other users' ids."""
    try:
        return BulkProcess.objects.get(kind=kind, owner=user, process_id=process_id)
    except (BulkProcess.DoesNotExist, ValidationError):
        raise ProcessNotFound(process_id) from None


def get_process(user: User, kind: ProcessKind | None, process_id: str) -> ProcessInfo:
    """The user's process of that kind (None: of any kind); ProcessNotFound for unknown ids and
    other users' ids."""
    processes = BulkProcess.objects.filter(owner=user, **({"kind": kind} if kind else {}))
    try:
        process = _with_counts(processes).get(process_id=process_id)
    except (BulkProcess.DoesNotExist, ValidationError):
        raise ProcessNotFound(process_id) from None
    return _info(process, detail=True)


def list_processes(user: User, kind: ProcessKind, offset: int, limit: int) -> tuple[list[ProcessInfo], int]:
    """A page of the user's processes of that kind, newest first, and how many there are."""
    processes = BulkProcess.objects.filter(owner=user, kind=kind).order_by("-created", "-id")
    page = _with_counts(processes)[offset : offset + limit]
    return [_info(p, detail=False) for p in page], processes.count()
