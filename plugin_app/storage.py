"""
Where exports, uploaded content and reports are stored, and how they are read back.

An S3 bucket (django-storages) when ``EXPORTBULK_BUCKET`` is set, otherwise a local folder
served through signed, expiring URLs. The storage is built from the ``EXPORTBULK_*`` settings
at first use rather than from a ``STORAGES`` alias, because Tutor's settings patches set those
values after the app's ``plugin_settings`` has run.

Every write goes through :func:`open_writer`: streamed, and atomic (a failed write leaves no
object behind, in S3 by aborting the multipart upload, on disk by never renaming the temp file).
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core import signing
from django.core.files.storage import FileSystemStorage, Storage
from django.core.files.utils import validate_file_name
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import reverse
from storages.backends.s3 import S3Storage

from plugin_app.files import atomic_file
from plugin_app.s3_writer import part_size, s3_writer

_SIGNING_SALT = "plugin_app.storage.download"


class SignedFileSystemStorage(FileSystemStorage):
    """Local storage whose URLs carry a signature that expires, like presigned S3 URLs."""

    def url(self, name: str | None) -> str:
        token = signing.dumps(name, salt=_SIGNING_SALT)
        return reverse("exportbulk:download", kwargs={"token": token})


def unsign_download_token(token: str) -> str:
    """The storage name a download token was made for; raises ``signing.BadSignature``."""
    max_age = settings.EXPORTBULK_URL_EXPIRY_SECONDS
    return signing.loads(token, salt=_SIGNING_SALT, max_age=max_age)


class SharedClientS3Storage(S3Storage):
    """S3 storage whose hot paths share one boto3 client across threads.

    django-storages builds a boto3 resource per thread (about 0.1 s of CPU each); every export
    runs in fresh pool threads and every server thread presigns status URLs. Low-level boto3
    clients are thread-safe, so presigning and multipart uploads use one per storage.
    """

    @functools.cached_property
    def client(self) -> Any:
        return self.connection.meta.client

    def url(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        expire: int | None = None,
        http_method: str | None = None,
    ) -> str:
        if not self.querystring_auth or parameters or http_method:
            return super().url(name, parameters, expire, http_method)
        params = {"Bucket": self.bucket_name, "Key": name}
        return self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expire or self.querystring_expire
        )


@functools.cache
def get_storage() -> Storage:
    """The storage of exports, uploaded content and reports."""
    if settings.EXPORTBULK_BUCKET:
        return SharedClientS3Storage(
            bucket_name=settings.EXPORTBULK_BUCKET,
            access_key=settings.EXPORTBULK_AWS_ACCESS_KEY_ID or None,
            secret_key=settings.EXPORTBULK_AWS_SECRET_ACCESS_KEY or None,
            endpoint_url=settings.EXPORTBULK_S3_ENDPOINT_URL or None,
            region_name=settings.EXPORTBULK_S3_REGION or None,
            location="",
            default_acl=None,
            file_overwrite=True,
            querystring_auth=not settings.EXPORTBULK_PUBLIC_URLS,
            querystring_expire=settings.EXPORTBULK_URL_EXPIRY_SECONDS,
            custom_domain=None,
            client_config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if settings.EXPORTBULK_S3_ENDPOINT_URL else "auto"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
    root = settings.EXPORTBULK_LOCAL_ROOT or os.path.join(settings.MEDIA_ROOT, "exportbulk")
    return SignedFileSystemStorage(location=root, allow_overwrite=True)


@receiver(setting_changed)
def _forget_storage(setting: str, **kwargs: Any) -> None:
    if setting.startswith("EXPORTBULK_") or setting == "MEDIA_ROOT":
        get_storage.cache_clear()


def object_name(*parts: str) -> str:
    """A storage name under the configured key prefix; refuses names that escape it."""
    name = settings.EXPORTBULK_KEY_PREFIX + "/".join(parts)
    validate_file_name(name, allow_relative_path=True)
    if name.startswith("/") or "//" in name:
        raise ValueError(f"Unsafe storage name: {name!r}")
    return name


def export_name(course_id: str, process_id: str = "") -> str:
    """Where the export of one course is stored: its latest, or the one a process made.

    A process's own object is never overwritten, so a URL given for a process serves what that
    process exported even on a bucket without versioning; the latest is a copy of it.
    """
    name = settings.EXPORTBULK_EXPORT_KEY_TEMPLATE.format(course_id=course_id)
    return object_name("exports", process_id, name) if process_id else object_name(name)


# The largest object S3 copies in one CopyObject request.
_LARGEST_SINGLE_COPY = 5 * 2**30


def copy(source: str, target: str, size: int) -> None:
    """Put the stored object ``source`` (of ``size`` bytes) under the name ``target`` too, atomically,
    without reading it here.

    S3: nothing when ``target`` already holds the same bytes (``_holds_same``: an export of an
    unchanged course is byte for byte the previous one); else one CopyObject (boto3's managed copy
    first asks the size with a HEAD and runs a transfer manager: about three times the time of the
    copy itself on moto), multipart past 5 GiB. A disk: a hard link, swapped in by rename
    (``source`` is never written again: every write replaces).
    """
    store = get_storage()
    if isinstance(store, SharedClientS3Storage):
        if _holds_same(store, target, source, size):
            return
        copied = {"Bucket": store.bucket_name, "Key": source}
        if size < _LARGEST_SINGLE_COPY:
            store.client.copy_object(CopySource=copied, Bucket=store.bucket_name, Key=target)
        else:
            store.client.copy(copied, store.bucket_name, target)
        return
    target_path = Path(store.path(target))
    target_path.parent.mkdir(parents=True, exist_ok=True)
    link = target_path.with_name(f".partial-{uuid.uuid4().hex}")
    os.link(store.path(source), link)
    try:
        os.replace(link, target_path)
    except BaseException:
        link.unlink(missing_ok=True)
        raise


def _holds_same(store: SharedClientS3Storage, target: str, source: str, size: int) -> bool:
    """Whether the object ``target`` holds the bytes of ``source``: the same size and the same
    single-part ETag (S3's MD5 of the content; a multipart ETag, or an encryption's that is not an
    MD5, never matches another upload's, so those are copied). On moto a copy costs a full read,
    write and MD5 of the object; S3 bills it as a request and takes time in proportion to the size."""
    client, bucket = store.client, store.bucket_name
    try:
        held = client.head_object(Bucket=bucket, Key=target)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    if held["ContentLength"] != size or "-" in held["ETag"]:
        return False
    return client.head_object(Bucket=bucket, Key=source)["ETag"] == held["ETag"]


class Stopped(Exception):
    """A writer was told to stop (its process was canceled); nothing was stored."""


class _Stoppable:
    """A writer that asks ``should_stop`` once per part's worth of bytes, and stops if told to."""

    def __init__(self, out: BinaryIO, should_stop: Callable[[], bool]):
        self._out, self._should_stop, self._unchecked = out, should_stop, 0
        self._part_size = part_size()

    def write(self, data: bytes) -> int:
        self._unchecked += len(data)
        if self._unchecked >= self._part_size:
            self._unchecked = 0
            if self._should_stop():
                raise Stopped()
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


@contextlib.contextmanager
def open_writer(
    name: str, content_type: str, should_stop: Callable[[], bool] | None = None
) -> Iterator[BinaryIO]:
    """A file to write ``name`` into; the object appears only if the ``with`` block succeeds.

    ``should_stop`` is asked between parts (``part_size``): when it answers True, the write raises
    Stopped and the partial object is dropped (S3: the multipart upload is aborted).
    """
    storage = get_storage()
    if isinstance(storage, S3Storage):
        writer = s3_writer(storage.client, storage.bucket_name, name, content_type)
    else:
        writer = atomic_file(storage.path(name))
    with writer as out:
        yield cast(BinaryIO, _Stoppable(out, should_stop)) if should_stop else out


def discard(name: str) -> None:
    """Remove ``name`` and, in S3, every unfinished multipart upload to it (a writer killed
    before it could abort leaves one behind, invisible but stored and billed)."""
    storage = get_storage()
    storage.delete(name)
    if isinstance(storage, SharedClientS3Storage):
        client, bucket = storage.client, storage.bucket_name
        listing = client.list_multipart_uploads(Bucket=bucket, Prefix=name)
        for upload in listing.get("Uploads", []):
            if upload["Key"] == name:
                client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload["UploadId"])


def existing(names: list[str]) -> set[str]:
    """Those of the names the storage holds. In S3, one paginated LIST of the range the names
    span (a HEAD each costs a request per name); on a disk, a stat each."""
    storage = get_storage()
    if not names or not isinstance(storage, SharedClientS3Storage):
        return {name for name in names if storage.exists(name)}
    wanted, first, last = set(names), min(names), max(names)
    found = set()
    pages = storage.client.get_paginator("list_objects_v2").paginate(
        Bucket=storage.bucket_name, Prefix=os.path.commonprefix(names), StartAfter=first[:-1]
    )
    for page in pages:
        keys = [entry["Key"] for entry in page.get("Contents", ())]
        found.update(wanted.intersection(keys))
        if not keys or keys[-1] >= last:
            break
    return found


def download_url(name: str) -> str:
    """A URL to download ``name``: presigned or public for S3, signed for local files (may be relative)."""
    return get_storage().url(name)


def object_url(name: str) -> str:
    """The object's plain address, as the export anchor answers it (``upload_urls``), whose path
    is the bucket key as is (not percent-encoded) so that a client can parse bucket and key back:
    ``https://<bucket>.s3.amazonaws.com/<key>`` on AWS, ``<endpoint>/<bucket>/<key>`` (path-style)
    on an S3-compatible endpoint. Not signed: the client downloads with its own credentials.
    Local storage has no bucket: its signed download URL (may be relative)."""
    bucket = settings.EXPORTBULK_BUCKET
    if not bucket:
        return download_url(name)
    endpoint = settings.EXPORTBULK_S3_ENDPOINT_URL
    return (
        f"{endpoint.rstrip('/')}/{bucket}/{name}" if endpoint else f"https://{bucket}.s3.amazonaws.com/{name}"
    )


@contextlib.contextmanager
def open_reader(name: str) -> Iterator[BinaryIO]:
    """``name`` to read as a stream, never whole in memory (django-storages' S3 files spool the
    whole object into memory first). FileNotFoundError when there is no such object."""
    storage = get_storage()
    if not isinstance(storage, S3Storage):
        with open(storage.path(name), "rb") as stream:
            yield stream
        return
    try:
        body = storage.client.get_object(Bucket=storage.bucket_name, Key=name)["Body"]
    except storage.client.exceptions.NoSuchKey:
        raise FileNotFoundError(name) from None
    try:
        yield body
    finally:
        body.close()


def where() -> str:
    """The storage as an operator names it: ``bucket NAME`` or ``folder PATH``."""
    storage = get_storage()
    if isinstance(storage, S3Storage):
        return f"bucket {storage.bucket_name}"
    return f"folder {cast(FileSystemStorage, storage).location}"


def describe_error(exc: BaseException) -> str:
    """A storage error in words safe to show, naming the bucket or folder (never a credential);
    any other error by its type."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return f"the {where()} does not exist"
        if code in (
            "AccessDenied",
            "403",
            "AllAccessDisabled",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        ):
            return f"the {where()} refuses access ({code})"
        return f"{code or 'ClientError'} from the {where()}"
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__} from the {where()}"
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and not settings.EXPORTBULK_BUCKET:
        return f"the {where()} cannot be written ({exc.strerror or type(exc).__name__})"
    return type(exc).__name__


def check_writable() -> str:
    """Write, read back and delete a small object: "" when the storage works, else what is wrong."""
    name = object_name("checks", f"{uuid.uuid4().hex}.txt")
    try:
        with open_writer(name, "text/plain") as out:
            out.write(b"exportbulk storage check\n")
        with open_reader(name) as stream:
            stream.read()
        get_storage().delete(name)
    except (BotoCoreError, ClientError, OSError) as exc:
        return describe_error(exc)
    return ""
