"""
The distribution an operator installs: built from this checkout, checked by twine, installed.

The wheel goes into a fresh venv with ``--no-deps``; that venv sees the dependencies of the test
venv through a one-line ``.pth`` naming its site-packages. A directory named in a ``.pth`` joins
``sys.path`` without its own ``.pth`` files being run, so the editable install of this checkout
(a ``.pth`` import hook in the test venv) stays out: imports resolve to the wheel's files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tutor_exportbulk.__about__ import __version__

ROOT = Path(__file__).resolve().parents[1]
PATCHES = sorted(p.name for p in (ROOT / "tutor_exportbulk" / "patches").iterdir())
# Local state that is no part of the source (the .gitignore's entries); copying the rest is quick.
NOT_SOURCE = shutil.ignore_patterns(
    *(".git", ".venv", ".exportbulk", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", ".hypothesis")
)
# What setuptools prints when data files are packaged ambiguously or not at all.
PACKAGING_WARNINGS = re.compile(
    r"absent from the `packages` configuration|no files found matching|SetuptoolsDeprecationWarning"
)


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{output}"
    return output


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path | str]:
    """The sdist, then the wheel built from that sdist (as ``python -m build`` does), and the log.

    Built from a copy of the checkout: setuptools writes its ``.egg-info`` beside the sources.
    """
    out = tmp_path_factory.mktemp("dist")
    source = shutil.copytree(ROOT, out / "source", ignore=NOT_SOURCE)
    log = run(sys.executable, "-m", "build", "--outdir", out, source, cwd=out)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "log": log}


@dataclass
class Venv:
    """A fresh venv holding the wheel, and the environment that runs its Python outside the checkout."""

    python: Path
    site: Path
    env: dict[str, str]
    home: Path

    def run(self, *args: str) -> str:
        return run(self.python, *args, cwd=self.home, env=self.env)

    def tutor(self, *args: str) -> str:
        return self.run("-c", "import sys; from tutor.commands.cli import main; sys.exit(main())", *args)


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Venv:
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(home / "venv")
    python = home / "venv" / "bin" / "python"
    # No PYTHONPATH: the checkout on the path would look like an installed tutor-exportbulk to pip.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TUTOR", "DJANGO"))}
    env.update(TUTOR_ROOT=str(home / "tutor"), TUTOR_PLUGINS_ROOT=str(home / "tutor-plugins"))
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps"]
    run(*pip, dist["wheel"], cwd=home, env=env)
    site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=home).strip()
    )
    (site / "zz_test_venv_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Venv(python, site, env, home)


def test_build_prints_no_packaging_warning(dist):
    assert not PACKAGING_WARNINGS.findall(dist["log"]), dist["log"]


def test_twine_check_passes(dist):
    output = run(sys.executable, "-m", "twine", "check", "--strict", dist["sdist"], dist["wheel"], cwd=ROOT)
    assert output.count("PASSED") == 2, output


def test_sdist_holds_licence_changelog_and_sample_course(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for required in ("LICENSE.txt", "CHANGELOG.md", "README.md", "setup.py", "pyproject.toml"):
        assert required in names
    assert "plugin_app/standalone/courses/sample/static/handout.pdf" in names


def test_wheel_holds_patches_templates_migrations_and_sample_course(dist):
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    expected = [f"tutor_exportbulk/patches/{name}" for name in PATCHES] + [
        "tutor_exportbulk/templates/exportbulk/tasks/lms/init",
        "tutor_exportbulk/py.typed",
        "plugin_app/migrations/0001_initial.py",
        "plugin_app/standalone/courses/LICENSE",
        "plugin_app/standalone/courses/sample/course.xml",
        "plugin_app/standalone/courses/sample/policies/2026/policy.json",
        "plugin_app/standalone/courses/sample/static/handout.pdf",
        f"tutor_exportbulk-{__version__}.dist-info/licenses/LICENSE.txt",
    ]
    assert [name for name in expected if name not in names] == []
    # Every migration and every file of the sample course of this checkout.
    for folder in ("plugin_app/migrations", "plugin_app/standalone/courses"):
        files = [p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert files
        assert [str(p.relative_to(ROOT)) for p in files if str(p.relative_to(ROOT)) not in names] == []
    assert not [name for name in names if name.startswith(("tests/", "bench/")) or "__pycache__" in name]


def test_wheel_metadata_names_the_licence(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        metadata = wheel.read(f"tutor_exportbulk-{__version__}.dist-info/METADATA").decode()
        licence = wheel.read(f"tutor_exportbulk-{__version__}.dist-info/licenses/LICENSE.txt").decode()
    assert "License-Expression: AGPL-3.0-only" in metadata
    assert licence == (ROOT / "LICENSE.txt").read_text(encoding="utf-8")
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in licence and "Version 3, 19 November 2007" in licence


def test_installed_wheel_is_what_python_imports(installed):
    code = (
        "import importlib.metadata as m, tutor_exportbulk, plugin_app;"
        "d = m.distribution('tutor-exportbulk');"
        "print(tutor_exportbulk.__file__); print(plugin_app.__file__); print(d.locate_file(''));"
        "print([e.value for e in d.entry_points if e.group == 'tutor.plugin.v1'])"
    )
    lines = installed.run("-c", code).splitlines()
    assert all(line.startswith(str(installed.site)) for line in lines[:3]), lines
    assert lines[3] == "['tutor_exportbulk.plugin']"


def test_tutor_in_the_venv_lists_and_renders_the_plugin(installed):
    listing = installed.tutor("plugins", "list")
    assert re.search(rf"^exportbulk\s+.*{re.escape(__version__)}", listing, re.M), listing
    installed.tutor("plugins", "enable", "exportbulk")
    # The patches and init task rendered by Tutor come from the installed wheel.
    settings = Path(installed.env["TUTOR_ROOT"], "env/apps/openedx/settings/lms/production.py").read_text()
    assert "EXPORTBULK_UPLOAD_MAX_ROWS = 1000" in settings
    assert "exportbulk" in installed.tutor("local", "do", "exportbulk-provision", "--help")
