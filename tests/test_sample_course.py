"""The project's own sample course is real OLX: olxcleaner finds nothing to report, and its parts agree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from plugin_app.standalone.cli import SAMPLE_COURSES

COURSE = SAMPLE_COURSES / "sample"
COURSE_KEY = "ExportBulk+Sample+2026"


def _edx_cleaner(course_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run olxcleaner failing at the DEBUG level, so a warning or a note fails as an error would."""
    command = Path(sys.executable).parent / "edx-cleaner"
    return subprocess.run(
        [str(command), "-c", str(course_dir / "course.xml"), "--failure", "0", "--stats"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _xml(path: Path) -> ElementTree.Element:
    return ElementTree.parse(path).getroot()


def test_olxcleaner_reports_nothing_and_counts_the_whole_course():
    result = _edx_cleaner(COURSE)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No errors found!" in output
    assert not re.search(r"^(INFO|WARNING|ERROR)s?\b", output, re.MULTILINE), output
    counts = {name: int(n) for name, n in re.findall(r"^\s+- (\w+): (\d+)$", output, re.MULTILINE)}
    assert counts == {
        "course": 1,
        "chapter": 2,
        "sequential": 3,
        "vertical": 4,
        "html": 4,
        "video": 1,
        "problem": 1,
        "multiplechoiceresponse": 1,
        "choicegroup": 1,
    }
    assert re.search(r"Number of problems with solutions: 1$", output, re.MULTILINE)


def test_pointer_names_the_course_and_its_run_policy():
    pointer = _xml(COURSE / "course.xml")
    assert pointer.attrib == {"org": "ExportBulk", "course": "Sample", "url_name": "2026"}
    assert (COURSE / "course" / "2026.xml").is_file()
    policy = json.loads((COURSE / "policies" / "2026" / "policy.json").read_text())
    assert policy["course/2026"]["display_name"] == "Exportbulk Sample Course"


def test_static_files_and_asset_metadata_match_one_to_one():
    assets = json.loads((COURSE / "policies" / "assets.json").read_text())
    assert set(assets) == {p.name for p in (COURSE / "static").iterdir()}
    for name, meta in assets.items():
        assert meta["filename"] == f"asset-v1:{COURSE_KEY}+type@asset+block@{name}"
        assert (meta["displayname"], meta["import_path"]) == (name, name)
        assert meta["contentType"]
    assert [name for name, meta in assets.items() if meta["locked"]] == ["staff-notes.txt"]


def test_video_plays_a_static_file_with_a_static_transcript():
    (video_file,) = (COURSE / "video").glob("*.xml")
    video = _xml(video_file)
    assert json.loads(video.get("html5_sources")) == ["/static/intro.mp4"]
    transcripts = json.loads(video.get("transcripts"))
    assert transcripts == {t.get("language"): t.get("src") for t in video.iter("transcript")}
    for path in ["intro.mp4", *transcripts.values()]:
        assert (COURSE / "static" / path).is_file()


def test_draft_unit_sits_in_an_existing_subsection_with_its_own_draft_component():
    (draft_file,) = (COURSE / "drafts" / "vertical").glob("*.xml")
    draft = _xml(draft_file)
    parent_url = draft.get("parent_url")
    assert parent_url.startswith(f"block-v1:{COURSE_KEY}+type@sequential+block@")
    parent = _xml(COURSE / "sequential" / f"{parent_url.rsplit('@', 1)[1]}.xml")
    published_siblings = [child.get("url_name") for child in parent]
    assert draft_file.stem not in published_siblings
    assert 0 <= int(draft.get("index_in_children_list")) <= len(published_siblings)
    assert not (COURSE / "vertical" / draft_file.name).exists()
    for child in draft:
        component = _xml(COURSE / "drafts" / child.tag / f"{child.get('url_name')}.xml")
        assert (COURSE / "drafts" / child.tag / f"{component.get('filename')}.html").is_file()
