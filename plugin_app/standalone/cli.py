"""
``exportbulk-standalone``: run the app outside Open edX.

    exportbulk-standalone provision --username U --email E --client-id ID --client-secret S
    exportbulk-standalone serve --host 127.0.0.1 --port 8000     (migrations, then gunicorn)
    exportbulk-standalone worker                                  (a Celery worker)
    exportbulk-standalone backup [--all|--org X|--course ID ...] [--no-changed-only]
    exportbulk-standalone demo                                    (the README's main job)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

SAMPLE_COURSES = Path(__file__).parent / "courses"


def public_url(url: str) -> str:
    """A broker URL without its password, to print."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "plugin_app.standalone.settings")
    import django

    django.setup()


def seed_courses() -> Path:
    """The OLX root; when it does not exist yet, a copy of the sample course(s) is put there.

    Copied aside, then renamed into place: when ``serve`` and ``worker`` start together on a
    fresh ``EXPORTBULK_HOME``, one rename wins and the other process finds the whole copy.
    """
    from django.conf import settings

    root = Path(settings.EXPORTBULK_OLX_ROOT)
    if root.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}-"))
    try:
        shutil.copytree(SAMPLE_COURSES, staging, dirs_exist_ok=True)
        with contextlib.suppress(FileExistsError, OSError):
            staging.rename(root)  # refused when another process renamed its copy first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not root.is_dir():
        raise click.ClickException(f"Could not create the course folder {root}.")
    return root


def seed_sample_library() -> None:
    """The sample v2 library in Learning Core, on a database that holds no library yet (migrated)."""
    from plugin_app.standalone.sample_library import seed_sample_library as seed

    seed()


@click.group()
def main() -> None:
    """Bulk export and upload for Open edX courses, served without Open edX."""


@main.command()
def migrate() -> None:
    """Create or update the database tables."""
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


@main.command()
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--client-id", required=True)
@click.option("--client-secret", required=True, envvar="EXPORTBULK_CLIENT_SECRET")
@click.option("--password", help="Also allow the password grant for this user.")
def provision(username: str, email: str, client_id: str, client_secret: str, password: str | None) -> None:
    """Create or update the service user (staff) and its OAuth2 client, idempotently."""
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    seed_sample_library()
    options = {"username": username, "email": email, "client_id": client_id, "client_secret": client_secret}
    if password:
        options["password"] = password
    call_command("exportbulk_provision", **options)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--connections", default=1000, show_default=True, type=int, help="open connections per worker")
def serve(host: str, port: int, workers: int, connections: int) -> None:
    """Apply migrations, then serve the API with gunicorn's ASGI worker (see standalone/asgi.py)."""
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    seed_courses()
    seed_sample_library()
    if settings.CELERY_TASK_ALWAYS_EAGER:
        click.echo("Tasks run in-process (CELERY_BROKER_URL is not set): no worker is needed.")
    else:
        click.echo(
            f"Tasks go to the broker {public_url(settings.CELERY_BROKER_URL)}, queue "
            f"{settings.CELERY_TASK_DEFAULT_QUEUE}: run `exportbulk-standalone worker` with the same "
            "CELERY_BROKER_URL."
        )
    argv = [
        sys.executable, "-m", "gunicorn", "plugin_app.standalone.asgi:application",
        # Bodies are read on the event loop, so slow clients hold no thread (standalone/asgi.py).
        "--bind", f"{host}:{port}", "--workers", str(workers), "--worker-connections", str(connections),
        "--worker-class", "asgi", "--timeout", "600", "--graceful-timeout", "10",
        "--access-logfile", "-",
        # gunicornc's socket in the state folder, not in the user's home.
        "--control-socket", str(Path(settings.EXPORTBULK_HOME) / "gunicorn.ctl"),
    ]  # fmt: skip
    sys.stdout.flush()
    os.execv(sys.executable, argv)


@main.command()
@click.option("--concurrency", default=1, show_default=True, type=int)
@click.option(
    "--nice",
    default=10,
    show_default=True,
    type=click.IntRange(0, 19),
    help="CPU priority below the web server's: busy workers leave status calls fast.",
)
def worker(concurrency: int, nice: int) -> None:
    """Run a Celery worker for the project (needs CELERY_BROKER_URL)."""
    if not os.environ.get("CELERY_BROKER_URL"):
        raise click.UsageError("Set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) to run a worker.")
    setup_django()
    from django.conf import settings

    seed_courses()
    os.nice(nice)
    argv = [
        sys.executable, "-m", "celery", "--app", "plugin_app.standalone.celery_app", "worker",
        "--queues", settings.CELERY_TASK_DEFAULT_QUEUE, "--concurrency", str(concurrency),
        "--prefetch-multiplier", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    os.execv(sys.executable, argv)


@main.command()
@click.option("--all", "all_courses", is_flag=True, help="Every course (the default).")
@click.option("--org", help="The courses of one organization.")
@click.option("--course", "courses", multiple=True, help="A course id (repeatable).")
@click.option("--changed-only/--no-changed-only", default=True, show_default=True)
@click.option("--user", help="Run as this user (default: the user `provision` made).")
@click.option("--in-process", is_flag=True, help="Back up here rather than on the workers.")
def backup(
    all_courses: bool,
    org: str | None,
    courses: tuple[str, ...],
    changed_only: bool,
    user: str | None,
    in_process: bool,
) -> None:
    """One backup run (changed courses only by default); exits 1 when a course failed."""
    setup_django()
    from django.core.management import call_command
    from django.core.management.base import CommandError

    seed_courses()
    options: dict[str, Any] = {"changed_only": changed_only, "in_process": in_process, "all": all_courses}
    options.update({"org": org} if org else {}, **({"courses": list(courses)} if courses else {}))
    if user:
        options["user"] = user
    try:
        call_command("exportbulk_backup", **options)
    except CommandError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--port", default=0, type=int, help="port to serve on (default: a free one)")
def demo(port: int) -> None:
    """Provision, serve, export the sample course and bulk-upload into it, through the REST API."""
    from plugin_app.standalone.demo import run_demo

    sys.exit(run_demo(port))
