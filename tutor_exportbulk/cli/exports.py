"""`export`: courses to the bucket as OLX .tar.gz files."""

from __future__ import annotations

import click

from tutor_exportbulk.cli.output import print_exports
from tutor_exportbulk.cli.processes import queued, show_process
from tutor_exportbulk.cli.runtime import Runtime, api_command, interval_option


@api_command("export")
@click.argument("course_ids", nargs=-1)
@click.option("--org", help="Every course of this organization the service user may author.")
@click.option("--all", "all_courses", is_flag=True, help="Every course the service user may author.")
@click.option("--async", "run_async", is_flag=True, help="Queue the export and print its process id.")
@click.option("--wait", is_flag=True, help="Queue the export and follow it to the end (implies --async).")
@interval_option
def export(
    runtime: Runtime,
    course_ids: tuple[str, ...],
    org: str | None,
    all_courses: bool,
    run_async: bool,
    wait: bool,
    interval: float,
) -> int:
    """Export courses to the bucket as OLX .tar.gz files: COURSE_ID..., --org ORG or --all."""
    if sum((bool(course_ids), org is not None, all_courses)) != 1:
        raise click.UsageError("Give course ids, --org ORG or --all (one of them).")
    answer = runtime.client.export_courses(
        list(course_ids) or None, org=org, all=all_courses, async_=run_async or wait
    )
    if "successful_uploads" in answer:  # synchronous: the outcome, and the process for its files
        runtime.emit(answer, lambda console: print_exports(console, answer))
        if answer.get("processId"):
            runtime.hint(f"Process {answer['processId']}: {{prog}} download {answer['processId']}, "
                         f"{{prog}} report {answer['processId']}")  # fmt: skip
        return 1 if answer.get("failed_uploads") else 0
    if wait:
        return show_process(runtime, "export", runtime.follow(answer["processId"], "export", interval))
    return queued(runtime, "export", answer)
