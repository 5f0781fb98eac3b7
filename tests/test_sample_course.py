"""The project's own sample course is real OLX: olxcleaner finds no error, and its parts agree."""

from __future__ import annotations

import json
from xml.etree import ElementTree

from plugin_app.standalone.cli import SAMPLE_COURSES
from tests.conftest import edx_cleaner_errors

COURSE = SAMPLE_COURSES / "sample"


def test_sample_course_passes_olxcleaner():
    assert edx_cleaner_errors(COURSE) == 0


def test_sample_course_pointer_names_its_course_id():
    pointer = ElementTree.parse(COURSE / "course.xml").getroot()
    assert (pointer.get("org"), pointer.get("course"), pointer.get("url_name")) == (
        "ExportBulk",
        "Sample",
        "2026",
    )


def test_every_static_file_has_asset_metadata_and_one_is_locked():
    policy = json.loads((COURSE / "policies" / "assets.json").read_text())
    assert set(policy) == {p.name for p in (COURSE / "static").iterdir()}
    assert [name for name, meta in policy.items() if meta["locked"]] == ["staff-notes.txt"]


def test_draft_unit_points_at_an_existing_published_subsection():
    (draft,) = (COURSE / "drafts" / "vertical").glob("*.xml")
    parent = ElementTree.parse(draft).getroot().get("parent_url")
    assert parent.startswith("block-v1:ExportBulk+Sample+2026+type@sequential+block@")
    assert (COURSE / "sequential" / f"{parent.rsplit('@', 1)[1]}.xml").exists()
