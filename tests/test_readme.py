"""The README's client and CLI examples, run as written against the standalone server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import content_zip, manifest
from tests.conftest import CLIENT_ID, CLIENT_SECRET, SAMPLE_COURSE_ID

pytestmark = pytest.mark.live

README = Path(__file__).resolve().parents[1] / "README.md"


def example(kind: str) -> str:
    """The code block that follows the README's ``<!-- README example: KIND ... -->`` marker."""
    match = re.search(rf"<!-- README example: {kind} .*?-->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert match, f"no {kind} example in the README"
    return match.group(1)


def test_readme_python_example_runs(live, capsys):
    namespace = {"LMS_URL": live.base_url, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET}
    exec(compile(example("python"), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert SAMPLE_COURSE_ID in namespace["answer"]["successful_uploads"]
    assert capsys.readouterr().out.splitlines()[-1].startswith("Completed")


def test_readme_cli_example_runs(live, tmp_path):
    lines = example("shell").splitlines()
    exports = dict(item.split("=", 1) for item in shlex.split(lines[0])[1:])
    exports.update(
        EXPORTBULK_LMS_URL=live.base_url,
        EXPORTBULK_CLIENT_ID=CLIENT_ID,
        EXPORTBULK_CLIENT_SECRET=CLIENT_SECRET,
    )
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": "readme.html", "unit": "README / Examples / Unit"}]
    (tmp_path / "manifest.csv").write_bytes(manifest(rows))
    (tmp_path / "content.zip").write_bytes(content_zip({"readme.html": b"<p>from the README</p>"}))
    exportbulk = str(Path(sys.executable).parent / "exportbulk")
    env = {**live.env, **exports, "COLUMNS": "250"}  # wide enough for process ids on one line
    last_process = None
    for line in lines[1:]:
        args = shlex.split(line.replace("PROCESS_ID", last_process or "missing"))
        assert args[0] == "exportbulk"
        result = subprocess.run(
            [exportbulk, *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        if args[1:2] == ["list"]:
            ids = re.findall(r"\b[0-9a-f]{32}\b", result.stdout)
            assert ids, result.stdout
            last_process = ids[0]
    assert json.loads(result.stdout)["status"] == "Completed"
