"""Tutor hooks of tutor-exportbulk: configuration, patches, init tasks and commands. Hooks only."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from importlib import resources
from typing import Any

import click
from tutor import plugins
from tutor.core.hooks import priorities
from tutor.hooks.catalog import Filters  # what `tutor.hooks.Filters` re-exports, named for mypy --strict

from plugin_app.settings.common import DEFAULTS as APP_DEFAULTS
from tutor_exportbulk.__about__ import __version__
from tutor_exportbulk.cli import tutor_group

PACKAGE = resources.files("tutor_exportbulk")
TEMPLATES = PACKAGE / "templates"
# A `tutor mounts add /path/to/tutor-exportbulk` checkout replaces the released package in the image.
CHECKOUT_DIRNAME = "tutor-exportbulk"

config: dict[str, dict[str, Any]] = {
    "defaults": {
        "VERSION": __version__,
        # With tutor-minio the exports go to a bucket of the platform's own MinIO, created at init.
        "BUCKET": "{% if 'minio' in PLUGINS %}exportbulk{% endif %}",
        # The platform's S3 credentials (MinIO's when tutor-minio is enabled); empty: boto3's own chain.
        "AWS_ACCESS_KEY_ID": "{{ OPENEDX_AWS_ACCESS_KEY }}",
        "AWS_SECRET_ACCESS_KEY": "{{ OPENEDX_AWS_SECRET_ACCESS_KEY }}",
        # Empty means AWS itself.
        "S3_ENDPOINT_URL": "{% if 'minio' in PLUGINS %}"
        "{{ 'https' if ENABLE_HTTPS else 'http' }}://{{ MINIO_HOST }}"
        "{% endif %}",
        "S3_REGION": "",
        "KEY_PREFIX": "",
        "URL_EXPIRY_SECONDS": APP_DEFAULTS["EXPORTBULK_URL_EXPIRY_SECONDS"],
        "PUBLIC_URLS": APP_DEFAULTS["EXPORTBULK_PUBLIC_URLS"],
        "MAX_COURSES_PER_REQUEST": APP_DEFAULTS["EXPORTBULK_MAX_COURSES_PER_REQUEST"],
        "EXPORT_CONCURRENCY": APP_DEFAULTS["EXPORTBULK_EXPORT_CONCURRENCY"],
        "SYNC_EXPORT_WAIT_SECONDS": APP_DEFAULTS["EXPORTBULK_SYNC_EXPORT_WAIT_SECONDS"],
        "UPLOAD_MAX_ROWS": APP_DEFAULTS["EXPORTBULK_UPLOAD_MAX_ROWS"],
        # Empty: the CMS low-priority queue. Set (e.g. "edx.cms.core.exportbulk"): the app's tasks go
        # there, for a worker of their own (see the README: plain Tutor, tutor-contrib-celery).
        "CELERY_QUEUE": APP_DEFAULTS["EXPORTBULK_CELERY_QUEUE"],
        "MAX_ACTIVE_PROCESSES_PER_USER": APP_DEFAULTS["EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER"],
        "ITEMS_IN_FLIGHT": APP_DEFAULTS["EXPORTBULK_ITEMS_IN_FLIGHT"],
        # Course backups: a cron expression runs them on Kubernetes (empty: no schedule).
        "BACKUP_SCHEDULE": "",
        "BACKUP_KEEP": APP_DEFAULTS["EXPORTBULK_BACKUP_KEEP"],
        "BACKUP_MAX_AGE_DAYS": APP_DEFAULTS["EXPORTBULK_BACKUP_MAX_AGE_DAYS"],
        # Bulk restore: the olxcleaner level that fails an item (empty: findings are only reported), limits.
        "RESTORE_BLOCKING_LEVEL": APP_DEFAULTS["EXPORTBULK_RESTORE_BLOCKING_LEVEL"],
        "RESTORE_MAX_UPLOAD_BYTES": APP_DEFAULTS["EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES"],
        "RESTORE_MAX_UNCOMPRESSED_BYTES": APP_DEFAULTS["EXPORTBULK_RESTORE_MAX_UNCOMPRESSED_BYTES"],
        "RESTORE_MAX_COMPRESSION_RATIO": APP_DEFAULTS["EXPORTBULK_RESTORE_MAX_COMPRESSION_RATIO"],
        "RESTORE_MAX_MEMBERS": APP_DEFAULTS["EXPORTBULK_RESTORE_MAX_MEMBERS"],
        "RESTORE_MAX_TEXT_FILE_BYTES": APP_DEFAULTS["EXPORTBULK_RESTORE_MAX_TEXT_FILE_BYTES"],
        "RESTORE_MAX_ITEMS_RUNNING_PER_USER": APP_DEFAULTS["EXPORTBULK_RESTORE_MAX_ITEMS_RUNNING_PER_USER"],
        "RESTORE_VALIDATION_SECONDS": APP_DEFAULTS["EXPORTBULK_RESTORE_VALIDATION_SECONDS"],
        "RESTORE_VALIDATION_MEMORY_BYTES": APP_DEFAULTS["EXPORTBULK_RESTORE_VALIDATION_MEMORY_BYTES"],
        "MAX_ITEM_ATTEMPTS": APP_DEFAULTS["EXPORTBULK_MAX_ITEM_ATTEMPTS"],
        "SERVICE_USERNAME": "exportbulk",
        "SERVICE_EMAIL": "exportbulk@openedx",
        "OAUTH2_CLIENT_ID": "exportbulk",
    },
    "unique": {
        "OAUTH2_CLIENT_SECRET": "{{ 32|random_string }}",
    },
}


def prefixed(settings: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(f"EXPORTBULK_{key}", value) for key, value in settings.items()]


# Low priority: rendered after the defaults of other plugins, since ours refer to tutor-minio's.
Filters.CONFIG_DEFAULTS.add_items(prefixed(config["defaults"]), priority=priorities.LOW)
Filters.CONFIG_UNIQUE.add_items(prefixed(config["unique"]))

# Patches: one file per patch, named after it.
for patch in (PACKAGE / "patches").iterdir():
    Filters.ENV_PATCHES.add_item((patch.name, patch.read_text(encoding="utf-8")))


def read_task(service: str) -> str:
    """The unrendered init script of this plugin for one service."""
    return (TEMPLATES / "exportbulk" / "tasks" / service / "init").read_text(encoding="utf-8")


# The service user and its OAuth2 client: at every init, and on demand (same script).
PROVISION_TASK = read_task("lms")
Filters.CLI_DO_INIT_TASKS.add_item(("lms", PROVISION_TASK))


@click.command("exportbulk-provision", help="Create or update the exportbulk service user and OAuth2 client.")
def provision() -> Iterator[tuple[str, str]]:
    yield ("lms", PROVISION_TASK)


Filters.CLI_DO_COMMANDS.add_item(provision)


@click.command("exportbulk-backup", help="Back up courses to the bucket, as the service user (one run).")
@click.option("--all", "all_courses", is_flag=True, help="Every course (the default).")
@click.option("--org", help="The courses of one organization.")
@click.option("--course", "courses", multiple=True, help="A course id (repeatable).")
@click.option("--changed-only/--no-changed-only", default=True, show_default=True)
def backup(
    all_courses: bool, org: str | None, courses: tuple[str, ...], changed_only: bool
) -> Iterator[tuple[str, str]]:
    argv = [
        "./manage.py",
        "cms",
        "exportbulk_backup",
        "--changed-only" if changed_only else "--no-changed-only",
    ]
    argv += ["--all"] if all_courses else []
    argv += ["--org", org] if org else []
    for course in courses:
        argv += ["--course", course]
    yield ("cms", shlex.join(argv))


Filters.CLI_DO_COMMANDS.add_item(backup)


@Filters.CLI_DO_INIT_TASKS.add()
def _create_minio_bucket(tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Create the bucket in MinIO; only when tutor-minio is enabled, as only then is there a minio job."""
    if plugins.is_loaded("minio"):
        tasks.append(("minio", read_task("minio")))
    return tasks


Filters.MOUNTED_DIRECTORIES.add_item(("openedx", f"{CHECKOUT_DIRNAME}$"))
Filters.ENV_TEMPLATE_VARIABLES.add_item(("EXPORTBULK_CHECKOUT_DIRNAME", CHECKOUT_DIRNAME))

Filters.CLI_COMMANDS.add_item(tutor_group)
