"""
The modulestore backend, as far as it can be tested without edx-platform.

Its method bodies talk to the platform and are not faked here; what runs here is that the
module loads without the platform, fits the backend interface, is chosen by the setting,
derives stable outline block ids, and refuses bad units before it touches the modulestore.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from opaque_keys.edx.keys import CourseKey, UsageKey

from plugin_app.backends.base import CourseBackend, UnitNotFound, outline_block_id
from plugin_app.backends.modulestore import ModulestoreBackend

REPO = Path(__file__).resolve().parents[1]
COURSE = CourseKey.from_string("course-v1:ExportBulk+Sample+2026")
PLATFORM_PACKAGES = ("xmodule", "cms", "common", "openedx", "lms")

# Runs in a fresh interpreter: records every attempt to import a platform package, even one
# that a try/except would hide, and every platform module that ends up loaded.
IMPORT_PROBE = f"""
import sys
PLATFORM = {PLATFORM_PACKAGES!r}
def platform_modules():
    return sorted(name for name in sys.modules if name.split(".")[0] in PLATFORM)
before = platform_modules()
attempts = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PLATFORM:
            attempts.append(name)
        return None
sys.meta_path.insert(0, Probe())
import plugin_app.backends.modulestore
print(before, attempts, platform_modules())
"""


def test_importing_the_backend_touches_no_platform_package():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["[]", "[]", "[]"], result.stdout + result.stderr


def test_backend_implements_every_method_of_the_interface_with_its_signature():
    assert not ModulestoreBackend.__abstractmethods__
    backend = ModulestoreBackend.from_settings()
    assert isinstance(backend, CourseBackend) and backend.name == "modulestore"
    for name in CourseBackend.__abstractmethods__:
        implemented = inspect.signature(getattr(ModulestoreBackend, name)).parameters
        declared = inspect.signature(getattr(CourseBackend, name)).parameters
        assert list(implemented) == list(declared), name


def test_setting_modulestore_selects_this_backend(settings):
    from plugin_app.backends import get_backend

    settings.EXPORTBULK_COURSE_BACKEND = "modulestore"
    assert type(get_backend()) is ModulestoreBackend


def test_outline_block_ids_are_stable_across_processes():
    path = ["Week 1", "Lesson 1", "Reading"]
    # A fresh interpreter with another hash seed must derive the same id: retries run in other workers.
    probe = (
        "from opaque_keys.edx.keys import CourseKey; from plugin_app.backends.base import outline_block_id; "
        f"print(outline_block_id(CourseKey.from_string({str(COURSE)!r}), {path!r}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert other.stdout.strip() == outline_block_id(COURSE, path)


def test_outline_block_ids_differ_per_level_path_and_course_and_are_valid_block_ids():
    other_course = CourseKey.from_string("course-v1:ExportBulk+Sample+2027")
    paths = [["A"], ["A", "B"], ["A", "B", "C"], ["A", "B", "D"], ["A", "X"], ["B"], ["A / B"]]
    ids = [outline_block_id(COURSE, path) for path in paths]
    assert len(set(ids)) == len(paths)
    assert outline_block_id(other_course, ["A"]) != outline_block_id(COURSE, ["A"])
    for block_type, block_id in zip(("chapter", "sequential", "vertical"), ids, strict=False):
        assert re.fullmatch(r"[0-9a-f]{32}", block_id)
        key = COURSE.make_usage_key(block_type, block_id)
        assert UsageKey.from_string(str(key)) == key


@pytest.mark.parametrize("unit", ["Week 1 / Lesson 1", "Week 1 /  / Reading", "Week / 1 / Lesson / 1"])
def test_resolve_unit_refuses_a_bad_outline_path_before_touching_the_modulestore(unit):
    with pytest.raises(ValueError, match="three non-empty parts"):
        ModulestoreBackend().resolve_unit(COURSE, unit, user=None)


def test_resolve_unit_refuses_a_usage_key_that_is_not_a_unit_before_touching_the_modulestore():
    html = str(COURSE.make_usage_key("html", "intro"))
    with pytest.raises(UnitNotFound, match="is not a unit of"):
        ModulestoreBackend().resolve_unit(COURSE, html, user=None)


def test_the_platforms_yaml_values_win_and_env_tokens_is_never_read():
    """The platform makes each key of its YAML config a setting before the plugins' settings run,
    in the order common then production (edx-django-utils ``add_plugins``); ``ENV_TOKENS`` is kept
    only for old plugins, and may be stale once a later settings step changes a value."""
    import importlib
    import types

    from plugin_app.apps import ExportBulkConfig
    from plugin_app.settings.common import DEFAULTS

    cms = types.SimpleNamespace(EXPORTBULK_BUCKET="from-yaml", ENV_TOKENS={"EXPORTBULK_BUCKET": "stale"})
    config = ExportBulkConfig.plugin_app["settings_config"]["cms.djangoapp"]
    for settings_type in ("common", "production"):
        if settings_type in config:
            importlib.import_module(f"plugin_app.{config[settings_type]['relative_path']}").plugin_settings(
                cms
            )
    assert cms.EXPORTBULK_BUCKET == "from-yaml"
    assert cms.EXPORTBULK_BACKUP_KEEP == DEFAULTS["EXPORTBULK_BACKUP_KEEP"]  # defaults fill the rest
