"""The response envelope of the status APIs, as Sunbird's bulk upload API answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.request import Request

from plugin_app.data import ProcessInfo


def format_time(moment: datetime | None) -> str | None:
    """Sunbird's timestamp format: ``2019-07-26 11:28:42:315+0000``."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S:") + f"{moment.microsecond // 1000:03d}" + moment.strftime("%z")


def envelope(
    api_id: str, result: dict[str, Any], err: str | None = None, errmsg: str | None = None
) -> dict[str, Any]:
    """``{id, ver, ts, params, responseCode, result}``; ``err`` set means a failed call."""
    return {
        "id": api_id,
        "ver": "v1",
        "ts": format_time(timezone.now()),
        "params": {
            "resmsgid": str(uuid.uuid4()),
            "msgid": str(uuid.uuid4()),
            "err": err,
            "status": err or "success",
            "errmsg": errmsg,
        },
        "responseCode": _RESPONSE_CODES.get(err, "CLIENT_ERROR") if err else "OK",
        "result": result,
    }


_RESPONSE_CODES = {"PROCESS_NOT_FOUND": "RESOURCE_NOT_FOUND", "QUEUE_UNAVAILABLE": "SERVER_ERROR"}


def process_result(info: ProcessInfo, request: Request) -> dict[str, Any]:
    """The ``result`` of a status call: counts always, end time and report once finished."""
    result = {
        "processId": info.process_id,
        "status": info.status,
        "totalCount": info.total_count,
        "successCount": info.success_count,
        "failedCount": info.failed_count,
        "canceledCount": info.canceled_count,
        "startTime": format_time(info.started_at or info.created),
    }
    if info.finished_at:
        result["endTime"] = format_time(info.finished_at)
        result["report"] = absolute_url(info.report_url, request) if info.report_url else None
        if not info.report_url:
            result["reportMissing"] = info.report_missing
    if info.error:
        result["error"] = info.error
    if info.items is not None:
        result["items"] = info.items
    if info.successful_uploads is not None:
        result["successful_uploads"] = absolute_urls(info.successful_uploads, request)
        result["failed_uploads"] = info.failed_uploads
    return result


def absolute_url(url: str, request: Request) -> str:
    """Local storage answers relative URLs; callers need absolute ones, on the configured base.

    Without ``EXPORTBULK_BASE_URL`` the request's host is used, which ``ALLOWED_HOSTS`` vouches for.
    """
    base: str = settings.EXPORTBULK_BASE_URL
    if base and url.startswith("/"):
        return base.rstrip("/") + url
    return request.build_absolute_uri(url)


def absolute_urls(urls: dict[str, str], request: Request) -> dict[str, str]:
    return {key: absolute_url(url, request) for key, url in urls.items()}
