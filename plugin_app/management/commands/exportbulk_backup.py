"""
``exportbulk_backup``: one backup run as the service user, for cron and Kubernetes CronJobs.

The run's courses go to the workers like those of any backup (or run here, ``--in-process``);
the command waits for the run to end, prints each course's outcome, and exits 1 when a course
failed, so that the scheduler shows the failure.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from oauth2_provider.models import get_application_model

from plugin_app import backups, contexts, lifecycle, runners
from plugin_app.data import ProcessKind, ProcessStatus
from plugin_app.management.commands.exportbulk_provision import APPLICATION_NAME
from plugin_app.status import get_process

POLL_SECONDS = 2.0


def service_user(username: str | None) -> Any:
    """The user a run acts as: ``username``, else EXPORTBULK_SERVICE_USERNAME, else the owner of
    the provisioned client (``exportbulk-standalone provision --username`` may name it otherwise)."""
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username=username or settings.EXPORTBULK_SERVICE_USERNAME).first()
    if user is None and not username:
        owners = get_application_model().objects.filter(name=APPLICATION_NAME).values("user")
        user = users.filter(pk__in=owners).first()
    if user is None:
        raise CommandError(
            f"No active user {username or settings.EXPORTBULK_SERVICE_USERNAME!r}: pass --user, or "
            "provision the service user (`tutor local do exportbulk-provision` under Tutor, "
            "`exportbulk-standalone provision` without it)."
        )
    return user


class Command(BaseCommand):
    help = (
        "Back up courses and v2 libraries (by default every one, changed ones only); exit 1 when one failed."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        selection = parser.add_mutually_exclusive_group()
        selection.add_argument(
            "--all", action="store_true", help="every course and library the user may author (default)"
        )
        selection.add_argument("--org", help="the courses and libraries of one organization")
        selection.add_argument(
            "--course", action="append", dest="courses", metavar="ID", help="a course id or library key"
        )
        parser.add_argument("--changed-only", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument(
            "--user", help="default: EXPORTBULK_SERVICE_USERNAME, else the provisioned client's user"
        )
        parser.add_argument(
            "--in-process", action="store_true", help="run the courses here, not on the workers"
        )
        parser.add_argument("--timeout", type=float, default=23 * 3600, help="seconds to wait for the run")

    def handle(self, *args: Any, **options: Any) -> None:
        user = service_user(options["user"])
        username = user.username
        course_ids = options["courses"] or contexts.authorable(user, options["org"])
        if not course_ids:
            raise CommandError(f"No course to back up: {username} may author no course of that selection.")
        try:
            process_id = backups.start_backup(
                user, course_ids, options["changed_only"], send=not options["in_process"]
            )
        except (lifecycle.QuotaExceeded, lifecycle.QueueUnavailable) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Backup {process_id}: {len(course_ids)} course(s).")
        if options["in_process"]:
            runners.run_now(process_id)
        info = get_process(user, ProcessKind.BACKUP, process_id)
        deadline = time.monotonic() + options["timeout"]
        while info.finished_at is None:
            if time.monotonic() > deadline:
                raise CommandError(f"Backup {process_id} did not end within {options['timeout']:.0f} s.")
            time.sleep(POLL_SECONDS)
            info = get_process(user, ProcessKind.BACKUP, process_id)
        for item in info.items or []:
            detail = item.get("reason") or item.get("key", "")
            self.stdout.write(f"{item['status']:<10} {item['course_id']}  {detail}")
        counts = {
            status: sum(1 for i in info.items or [] if i["status"] == status) for status in backups.OUTCOMES
        }
        self.stdout.write(
            f"{info.status}: {counts['exported']} exported, {counts['unchanged']} unchanged, "
            f"{counts['failed']} failed. Manifest: {backups.manifest_key(process_id)}"
        )
        if info.status != ProcessStatus.COMPLETED or counts["failed"]:
            raise CommandError(
                f"Backup {process_id}: {counts['failed']} course(s) failed. {info.error}".strip()
            )
