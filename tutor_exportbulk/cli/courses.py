"""The LMS commands: `courses`, `enroll`, `unenroll`."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.text import Text

from tutor_exportbulk.cli.output import print_records
from tutor_exportbulk.cli.runtime import Runtime, api_command


@api_command("courses")
@click.option("--org", help="Only the courses of this organization.")
def courses(runtime: Runtime, org: str | None) -> None:
    """List the courses the service user can see in the LMS."""
    found = runtime.client.list_all_courses(org=org)

    def render(console: Console) -> None:
        rows = [(c.get("id"), c.get("name"), c.get("start"), c.get("pacing")) for c in found]
        headers = ("Course id", "Name", "Start", "Pacing")
        print_records(console, f"{len(found)} course(s)", headers, rows, copyable=("Course id",))

    runtime.emit(found, render)


def _change_enrollment(
    runtime: Runtime, action: str, emails: tuple[str, ...], course_ids: tuple[str, ...], **options: Any
) -> int:
    answer = runtime.client.change_enrollment(list(emails), list(course_ids), action=action, **options)
    rows = [
        (course_id, result)
        for course_id, outcome in answer.get("courses", {}).items()
        for result in outcome.get("results", [])
    ]
    failed = any(result.get("error") or result.get("invalidIdentifier") for _, result in rows)

    def render(console: Console) -> None:
        table = [(course_id, result.get("identifier"), *_outcome(result)) for course_id, result in rows]
        headers = ("Course", "Learner", "Before", "After")
        print_records(
            console, f"{action}: {len(rows)} change(s)", headers, table, copyable=("Course", "Learner")
        )

    runtime.emit(answer, render)
    return 1 if failed else 0


def _outcome(result: dict[str, Any]) -> tuple[str, str | Text]:
    """The before and after of one learner's change, or what went wrong."""
    if result.get("invalidIdentifier"):
        return "", Text("invalid identifier", "red")
    if result.get("error"):
        return "", Text(result.get("error_message") or "error", "red")
    return _state(result["before"]), _state(result["after"])


def _state(state: dict[str, Any]) -> str:
    """One enrollment state of the instructor API in words."""
    if state.get("enrollment"):
        words = "enrolled"
    elif state.get("allowed"):
        words = "allowed, auto-enroll" if state.get("auto_enroll") else "allowed"
    else:
        words = "not enrolled"
    return f"{words}, cohort {state['cohort']}" if state.get("cohort") else words


emails_option = click.option(
    "--email", "emails", multiple=True, required=True, help="A learner's email or username (repeat)."
)
courses_option = click.option(
    "--course", "course_ids", multiple=True, required=True, help="A course id (repeat)."
)
notify_option = click.option(
    "--email-students/--no-email-students",
    default=True,
    show_default=True,
    help="Tell the learners by email.",
)


@api_command("enroll")
@emails_option
@courses_option
@click.option("--cohort", "cohorts", multiple=True, help="A cohort per course, in the order of --course.")
@click.option(
    "--auto-enroll/--no-auto-enroll",
    default=True,
    show_default=True,
    help="Enroll unregistered emails on sign-up.",
)
@notify_option
def enroll(
    runtime: Runtime,
    emails: tuple[str, ...],
    course_ids: tuple[str, ...],
    cohorts: tuple[str, ...],
    auto_enroll: bool,
    email_students: bool,
) -> int:
    """Enroll learners in courses (the LMS bulk enrollment API; needs global staff)."""
    return _change_enrollment(
        runtime,
        "enroll",
        emails,
        course_ids,
        cohorts=list(cohorts) or None,
        auto_enroll=auto_enroll,
        email_students=email_students,
    )


@api_command("unenroll")
@emails_option
@courses_option
@notify_option
def unenroll(
    runtime: Runtime, emails: tuple[str, ...], course_ids: tuple[str, ...], email_students: bool
) -> int:
    """Unenroll learners from courses."""
    return _change_enrollment(runtime, "unenroll", emails, course_ids, email_students=email_students)
