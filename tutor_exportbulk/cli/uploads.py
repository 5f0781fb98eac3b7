"""`upload`: files into courses from a CSV manifest and a ZIP."""

from __future__ import annotations

from pathlib import Path

import click

from tutor_exportbulk.cli.processes import queued, show_process
from tutor_exportbulk.cli.runtime import Runtime, api_command, interval_option


@api_command("upload")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--content",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The ZIP of the files the manifest names.",
)
@click.option(
    "--mode",
    type=click.Choice(["upload", "publish", "link"]),
    default="upload",
    show_default=True,
    help="upload: locked assets; publish: public assets; link: and a component in each row's unit.",
)
@click.option("--wait", is_flag=True, help="Follow the upload to the end.")
@interval_option
def upload(runtime: Runtime, manifest: Path, content: Path, mode: str, wait: bool, interval: float) -> int:
    """Upload content into courses from a CSV MANIFEST and a ZIP."""
    answer = runtime.client.bulk_upload(manifest, content, mode=mode)
    if wait:
        return show_process(runtime, "upload", runtime.follow(answer["processId"], "upload", interval))
    return queued(runtime, "upload", answer)
