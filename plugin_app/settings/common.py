"""
Defaults of every setting the app reads, for the LMS, the CMS and the standalone project.

The Tutor plugin overrides them from its ``EXPORTBULK_*`` config in the production
settings patch; a key of the platform's YAML config (``cms.env.yml``) is a setting of that
name before these defaults are applied, so it wins too.
"""

from typing import Any

DEFAULTS: dict[str, Any] = {
    # S3 bucket for exports, uploaded content and reports. Empty: local filesystem storage.
    "EXPORTBULK_BUCKET": "",
    "EXPORTBULK_AWS_ACCESS_KEY_ID": "",
    "EXPORTBULK_AWS_SECRET_ACCESS_KEY": "",
    # Empty means AWS itself; set it for MinIO or any S3-compatible server.
    "EXPORTBULK_S3_ENDPOINT_URL": "",
    "EXPORTBULK_S3_REGION": "",
    # Every object the app writes lives under this prefix.
    "EXPORTBULK_KEY_PREFIX": "",
    # Object key of one export, below the prefix; ``{course_id}`` is the normalized course key.
    "EXPORTBULK_EXPORT_KEY_TEMPLATE": "{course_id}.tar.gz",
    # Lifetime of presigned (or locally signed) download URLs.
    "EXPORTBULK_URL_EXPIRY_SECONDS": 7 * 24 * 3600,
    # Base of the local-storage download URLs the API answers (e.g. https://studio.example.com);
    # empty: the request's own scheme and host, which Django's ALLOWED_HOSTS has checked.
    "EXPORTBULK_BASE_URL": "",
    # True for a public-read bucket: plain object URLs instead of presigned ones.
    "EXPORTBULK_PUBLIC_URLS": False,
    # Filesystem storage root when no bucket is set (default: MEDIA_ROOT/exportbulk).
    "EXPORTBULK_LOCAL_ROOT": "",
    "EXPORTBULK_MAX_COURSES_PER_REQUEST": 500,
    # 0: a synchronous export request (no "async") exports its courses itself, in threads, and
    # answers when all are done (the seed's contract). N > 0: the workers export them and the request
    # waits at most N seconds, then answers with the courses still running in ``pending_uploads``
    # and ``upload_task_ids`` (for clients with a timeout: MIT's pipeline waits 60 s, so 45).
    "EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS": 0,
    # Courses of a synchronous export request exported at the same time, in threads of the web
    # process (they pay where the work releases the GIL: file reads, compression, network).
    "EXPORTBULK_EXPORT_CONCURRENCY": 4,
    # Items of one process sent to the workers and not yet finished, at most: one process uses at
    # most this many worker processes at once, and another process's items wait behind at most this many.
    "EXPORTBULK_ITEMS_IN_FLIGHT": 16,
    # Processes a user may have queued or running at once (0: no limit); beyond it, 429 + Retry-After.
    "EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER": 5,
    # ISA-L compression level of export tarballs, 0 (fastest) to 3 (smallest); output is plain gzip.
    "EXPORTBULK_COMPRESSION_LEVEL": 1,
    # Part size of the bucket's multipart uploads (at least 5 MiB), and the largest object sent in
    # one PutObject: each running export or backup holds up to this much in memory.
    "EXPORTBULK_UPLOAD_PART_BYTES": 32 * 1024**2,
    "EXPORTBULK_UPLOAD_MAX_ROWS": 1000,
    # Limits on the content ZIP of a bulk upload (the first also bounds the ZIP file's own size).
    "EXPORTBULK_UPLOAD_MAX_UNCOMPRESSED_BYTES": 2 * 1024**3,
    "EXPORTBULK_UPLOAD_MAX_COMPRESSION_RATIO": 100,
    "EXPORTBULK_UPLOAD_MAX_CELL_CHARS": 1000,
    # Bytes one upload may write into courses: a file named by many rows counts once per row.
    "EXPORTBULK_UPLOAD_MAX_WRITE_BYTES": 4 * 1024**3,
    "EXPORTBULK_UPLOAD_MAX_MANIFEST_BYTES": 10 * 1024**2,
    # Limits on a course tarball to restore, enforced on the bytes actually decompressed.
    "EXPORTBULK_RESTORE_MAX_UNCOMPRESSED_BYTES": 8 * 1024**3,
    "EXPORTBULK_RESTORE_MAX_COMPRESSION_RATIO": 200,
    "EXPORTBULK_RESTORE_MAX_MEMBERS": 100_000,
    # Largest text file (XML, HTML, JSON, CSV outside static/) in a tarball, refused before it is
    # written: the bound on what one file costs to parse or rewrite (real ones are under 1 MB).
    "EXPORTBULK_RESTORE_MAX_TEXT_FILE_BYTES": 10 * 1024**2,
    # Restore items of one user unpacked or applied at once, all their processes, workers and pods
    # together (the others wait in the queue's database, holding no worker): each may stage up to
    # EXPORTBULK_RESTORE_MAX_UNCOMPRESSED_BYTES on disk.
    "EXPORTBULK_RESTORE_MAX_ITEMS_RUNNING_PER_USER": 2,
    # Largest multipart restore request (the uploaded tarballs together), refused before it is read.
    "EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES": 2 * 1024**3,
    # olxcleaner findings at or above this level ("WARNING", "ERROR") fail a restore item; empty:
    # findings are reported only (Studio's own exports commonly carry ERROR-level findings).
    "EXPORTBULK_RESTORE_BLOCKING_LEVEL": "",
    # olxcleaner runs in a child process held to this wall time and address space; a course that
    # needs more fails its restore item (olxcleaner builds an object per pointer it follows).
    "EXPORTBULK_RESTORE_VALIDATION_SECONDS": 60,
    "EXPORTBULK_RESTORE_VALIDATION_MEMORY_BYTES": 512 * 1024**2,
    # Course backend: "modulestore", "olx_directory", or a dotted path; empty picks
    # modulestore inside edx-platform and olx_directory elsewhere.
    "EXPORTBULK_COURSE_BACKEND": "",
    # Folder of OLX course directories for the olx_directory backend.
    "EXPORTBULK_OLX_ROOT": "",
    # A worker running a process renews its hold on it at a third of this; another delivery of the
    # task takes over when the hold has not been renewed for this long (its worker died). Keep it
    # well under the broker's visibility timeout (Redis: one hour by default).
    "EXPORTBULK_LEASE_SECONDS": 60,
    # An item claimed this many times (counted in the database, whatever the broker redelivers)
    # fails instead of running again.
    "EXPORTBULK_MAX_ITEM_ATTEMPTS": 5,
    # Celery queue of the app's tasks (the CMS worker's default queue under Tutor).
    "EXPORTBULK_CELERY_QUEUE": "",
    # Backups: versions kept per course, and their maximum age in days (0: no age limit). The
    # newest good backup of a course is kept whatever these say.
    "EXPORTBULK_BACKUP_KEEP": 7,
    "EXPORTBULK_BACKUP_MAX_AGE_DAYS": 0,
    # The user scheduled backups run as (``exportbulk_backup``); the init task provisions it.
    "EXPORTBULK_SERVICE_USERNAME": "exportbulk",
    # Authentication classes of the REST API, as dotted paths.
    # The JWT class is edx-drf-extensions' JwtAuthentication refusing unknown or inactive users.
    "EXPORTBULK_AUTHENTICATION_CLASSES": [
        "plugin_app.authentication.ExistingUserJwtAuthentication",
        "openedx.core.lib.api.authentication.BearerAuthenticationAllowInactiveUser",
        "edx_rest_framework_extensions.auth.session.authentication.SessionAuthenticationAllowInactiveUser",
    ],
}


def plugin_settings(settings: Any) -> None:
    """Set every app default that the project has not set already."""
    for name, value in DEFAULTS.items():
        if not hasattr(settings, name):
            setattr(settings, name, value)
