"""Tutor hooks of tutor-exportbulk: configuration, patches, init tasks and commands. Hooks only."""

from __future__ import annotations

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
        "UPLOAD_MAX_ROWS": APP_DEFAULTS["EXPORTBULK_UPLOAD_MAX_ROWS"],
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


@Filters.CLI_DO_INIT_TASKS.add()
def _create_minio_bucket(tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Create the bucket in MinIO; only when tutor-minio is enabled, as only then is there a minio job."""
    if plugins.is_loaded("minio"):
        tasks.append(("minio", read_task("minio")))
    return tasks


Filters.MOUNTED_DIRECTORIES.add_item(("openedx", f"{CHECKOUT_DIRNAME}$"))
Filters.ENV_TEMPLATE_VARIABLES.add_item(("EXPORTBULK_CHECKOUT_DIRNAME", CHECKOUT_DIRNAME))

Filters.CLI_COMMANDS.add_item(tutor_group)
