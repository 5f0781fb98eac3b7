"""Plain data passed between the API, the course backends, the tasks and the views."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any


class ProcessKind(enum.StrEnum):
    EXPORT = "export"
    UPLOAD = "upload"
    BACKUP = "backup"
    RESTORE = "restore"


class ProcessStatus(enum.StrEnum):
    """A process as a whole; the names are the ones of the Sunbird status API."""

    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"


# A process is active (it counts against its owner's quota) until it ends.
ACTIVE_STATUSES = (ProcessStatus.QUEUED, ProcessStatus.PROCESSING)


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"


# An item is unfinished (sent, or to be sent, to a worker) until it has an outcome.
UNFINISHED = (ItemStatus.PENDING, ItemStatus.RUNNING)


@dataclass
class ItemOutcome:
    """How one item ended: SUCCESS or FAILED, what it made, and why it failed (one safe sentence)."""

    status: ItemStatus
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class UploadMode(enum.StrEnum):
    """What a bulk upload does with each row (Sunbird's operation modes)."""

    UPLOAD = "upload"  # a locked (staff-only) course asset
    PUBLISH = "publish"  # an unlocked asset with a public URL
    LINK = "link"  # published, then presented by a component in a unit


class ContentType(enum.StrEnum):
    ASSET = "asset"
    HTML = "html"
    PROBLEM = "problem"
    VIDEO = "video"
    PDF = "pdf"


@dataclass(frozen=True)
class CourseSummary:
    """What a course listing needs to know of one course."""

    course_id: str
    display_name: str
    org: str
    number: str
    run: str
    start: str | None = None
    end: str | None = None
    self_paced: bool = False


@dataclass(frozen=True)
class OlxTree:
    """A course exported as an OLX directory; ``root_name`` is the tarball's top folder."""

    path: Path
    root_name: str


@dataclass
class AssetFile:
    """A file to store as a course asset; ``stream`` is read once, from its start."""

    name: str
    content_type: str
    stream: IO[bytes]  # a ZIP member (zipfile.ZipExtFile) or any binary file
    locked: bool


@dataclass
class ComponentSpec:
    """A component to create (or replace) in a unit, with a block id chosen by the caller.

    ``fields`` holds the XBlock fields: ``data`` for html and problem; ``html5_sources``
    (list of URLs) and ``transcripts`` ({language: asset name}) for video.
    """

    block_type: str
    block_id: str
    display_name: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """One problem found in a bulk upload request.

    ``row`` is the spreadsheet line of the manifest (header = 1), or None for the request as a whole."""

    row: int | None
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class ProcessInfo:
    """A process as the status APIs show it; counts are counted from its items."""

    process_id: str
    kind: str
    owner_id: int
    status: str
    mode: str
    created: datetime
    started_at: datetime | None
    finished_at: datetime | None
    total_count: int
    success_count: int
    failed_count: int
    canceled_count: int = 0
    error: str = ""
    report_url: str | None = None
    report_missing: str = ""  # ended without a report (``report_url`` None): why, in one sentence
    # Exports only, once finished: {course_id: download URL} and {course_id: reason}.
    successful_uploads: dict[str, str] | None = None
    failed_uploads: dict[str, str] | None = None
    # Kinds with a presenter (``KindSpec.present_item``): every item as the status API shows it.
    items: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class StaticAssets:
    """A course's uploaded files: how many, and the newest upload (time and asset key)."""

    count: int = 0
    latest_upload: datetime | None = None
    latest_asset: str | None = None


@dataclass(frozen=True)
class Transcripts:
    """A course's video transcripts: how many, and when the newest change to one was made."""

    count: int = 0
    latest_modified: datetime | None = None


@dataclass(frozen=True)
class ContentVersions:
    """What an export of a course would hold, read from indexes without exporting it.

    The three public fields are what ``POST export/versions/`` answers (the export anchor's
    shape). ``digests`` covers every source an export reads, public or not (drafts, each asset's
    attributes, each transcript, VAL video metadata, content tags), one digest per source: the
    backup fingerprint is made of them, so the versions API and backups read one truth.
    """

    published_version: str
    static_assets: StaticAssets
    transcripts: Transcripts
    digests: dict[str, str] = field(default_factory=dict)
