"""The changelog fragments, their collection by scriv, and ``make help``: the tools of a release."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tutor_exportbulk.__about__ import __version__

ROOT = Path(__file__).resolve().parents[1]
SCRIV = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["scriv"]
FRAGMENTS = sorted(p for p in (ROOT / "changelog.d").glob("*.md") if p.name != "README.md")


def fragment_text(fragment: Path) -> str:
    """The fragment less its HTML comments (the unused sections of scriv's template)."""
    return re.sub(r"<!--.*?-->", "", fragment.read_text(encoding="utf-8"), flags=re.S)


def test_every_fragment_has_only_configured_categories_over_lists():
    assert FRAGMENTS, "no changelog fragment"
    for fragment in FRAGMENTS:
        text = fragment_text(fragment)
        assert re.fullmatch(r"\d{8}_[\w.-]+\.md", fragment.name), fragment.name
        headings = re.findall(r"^#+ .*$", text, re.M)
        assert headings, f"{fragment.name}: no ### heading"
        for heading in headings:
            # scriv would silently append an unknown category after the known ones.
            assert heading in {f"### {c}" for c in SCRIV["categories"]}, f"{fragment.name}: {heading!r}"
        for section in re.split(r"^### .*$", text, flags=re.M)[1:]:
            assert re.search(r"^- \S", section, re.M), f"{fragment.name}: a heading with no list item"


def test_scriv_collects_every_fragment_under_the_version(tmp_path):
    for name in ("pyproject.toml", "CHANGELOG.md", "changelog.d", "tutor_exportbulk/__about__.py"):
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    scriv = Path(sys.executable).with_name("scriv")
    subprocess.run([scriv, "collect"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    changelog = (tmp_path / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## v{__version__} (" in changelog
    for fragment in FRAGMENTS:
        for item in re.findall(r"^- .*$", fragment_text(fragment), re.M):
            assert item in changelog
    assert [p.name for p in (tmp_path / "changelog.d").iterdir()] == ["README.md"]


def test_make_help_lists_every_target_on_one_line():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z][\w-]*):", makefile, re.M)
    shown = subprocess.run(
        ["make", "-s", "-C", ROOT, "help"], check=True, capture_output=True, text=True, timeout=60
    ).stdout.splitlines()
    assert [line.split()[0] for line in shown] == targets
    assert all(len(line.split(maxsplit=1)) == 2 for line in shown), shown
