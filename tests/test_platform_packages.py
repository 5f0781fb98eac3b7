"""
Issue 22, item 1: the platform's own packages are the real ones in the tests, at the versions the
project pins (setup.py's ``platform`` extra, one line per Python where they differ) and the README
names; and the migration check covers this app only (edxval's models would always report changes).
"""

from __future__ import annotations

import ast
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def platform_pins() -> dict[str, str]:
    """The ``platform`` extra of setup.py that applies to this Python: package -> pinned version."""
    tree = ast.parse((REPO / "setup.py").read_text())
    extras = next(
        keyword.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "extras_require"
    )
    lines = ast.literal_eval(extras)["platform"]
    pins = {}
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            if spec.operator == "==":
                pins[requirement.name] = spec.version
    return pins


def test_the_pinned_platform_packages_are_installed_and_the_readme_names_them():
    pins = platform_pins()
    assert {"edxval", "openedx-authz", "openedx-core", "openedx-events", "django-user-tasks"} <= set(pins)
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Platform packages in the tests") :]
    for name, pinned in pins.items():
        assert version(name) == pinned, name
        if name == "fs":
            continue  # edxval's own dependency, not a platform package
        row = re.search(rf"^\| {re.escape(name)} \| (\S+) \| (\S+)", section, re.M)
        assert row and pinned in row.groups(), name


def test_the_packages_the_app_calls_are_installed_apps_of_the_test_project():
    for label in ("edxval", "openedx_authz", "waffle"):
        assert apps.is_installed(label), label


@pytest.mark.django_db
def test_migrations_of_this_app_match_its_models():
    """Scoped to this app's label: the platform packages' own migrations are theirs to keep."""
    call_command("makemigrations", "exportbulk", "--check", "--dry-run", verbosity=0)
