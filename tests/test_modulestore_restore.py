"""
The modulestore backend's restore, against fakes of the exact edx-platform functions it calls.

Each fake stands in for the function of that name and module in edx-platform (cited in the
backend's docstrings) and records how it was called; what runs for real is the app: the tarball
is unpacked and checked, and the backend hands the unpacked course to Studio's importer.
"""

from __future__ import annotations

import sys
import types

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import restores
from tests.tarballs import course_tarball

pytestmark = pytest.mark.django_db
TARGET = CourseKey.from_string("course-v1:NewOrg+N1+2030")


class FakeStore:
    """``xmodule.modulestore.django.modulestore()``: only what the backend's restore calls."""

    def __init__(self, courses: set):
        self.courses = courses

    def has_course(self, key, ignore_case=False):
        return key if key in self.courses else None


@pytest.fixture
def platform(monkeypatch, local_storage, settings):
    """Fake platform modules; returns the record of calls."""
    settings.EXPORTBULK_COURSE_BACKEND = "modulestore"
    calls: dict[str, list] = {"create": [], "import": [], "creator": []}
    courses: set = set()
    contentstore = object()

    def create_new_course(user, org, number, run, fields):
        calls["create"].append((user, org, number, run, fields))
        courses.add(CourseKey.from_string(f"course-v1:{org}+{number}+{run}"))

    def import_course_from_xml(store, user_id, data_dir, source_dirs=None, **kwargs):
        from pathlib import Path

        (name,) = source_dirs
        assert (Path(data_dir) / name / "course.xml").is_file()  # the unpacked course, still there
        calls["import"].append((store, user_id, kwargs))
        return [object()]

    def is_content_creator(user, org):
        calls["creator"].append((user, org))
        return user.username == "creator"

    modules = {
        "xmodule.modulestore.django": {"modulestore": lambda: FakeStore(courses)},
        "xmodule.contentstore.django": {"contentstore": lambda: contentstore},
        "xmodule.modulestore.xml_importer": {"import_course_from_xml": import_course_from_xml},
        "cms.djangoapps.contentstore.views.course": {"create_new_course": create_new_course},
        "common.djangoapps.student.auth": {
            "is_content_creator": is_content_creator,
            "has_studio_write_access": lambda user, key: user.is_staff,
        },
    }
    for dotted, attributes in modules.items():
        parts = dotted.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if parent not in sys.modules:
                monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
        module = types.ModuleType(dotted)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, dotted, module)
    calls["contentstore"] = [contentstore]
    calls["courses"] = [courses]
    return calls


def _stage(local_storage, data: bytes) -> str:
    from plugin_app import storage

    name = storage.object_name("backups", str(TARGET), "20261123T193000Z.tar.gz")
    path = local_storage / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return name


def test_a_missing_course_is_created_as_studio_does_then_imported_with_target_id(
    platform, local_storage, staff
):
    name = _stage(local_storage, course_tarball())

    outcome = restores.restore_one("p1-0", str(TARGET), name, staff, {})

    assert (outcome.outcome, outcome.error) == (restores.RESTORED, "")
    assert platform["create"] == [(staff, "NewOrg", "N1", "2030", {"wiki_slug": "NewOrg.N1.2030"})]
    ((store, user_id, kwargs),) = platform["import"]
    assert isinstance(store, FakeStore) and user_id == staff.id
    assert kwargs == {
        "load_error_blocks": False,
        "static_content_store": platform["contentstore"][0],
        "target_id": TARGET,
        "verbose": True,
    }


def test_an_existing_course_is_imported_over_without_creating_it(platform, local_storage, staff):
    platform["courses"][0].add(TARGET)
    name = _stage(local_storage, course_tarball())

    assert (
        restores.restore_one("p1-0", str(TARGET), name, staff, {"overwrite": True}).outcome
        == restores.RESTORED
    )
    assert platform["create"] == [] and len(platform["import"]) == 1


def test_a_refused_tarball_never_reaches_the_importer(platform, local_storage, staff):
    name = _stage(local_storage, course_tarball()[:100])

    outcome = restores.restore_one("p1-0", str(TARGET), name, staff, {})

    assert outcome.outcome == restores.FAILED and "truncated" in outcome.error
    assert platform["create"] == platform["import"] == []


def test_course_creation_right_is_studios_is_content_creator(platform, django_user_model):
    from plugin_app.backends import get_backend

    creator = django_user_model.objects.create_user("creator")
    author = django_user_model.objects.create_user("someone")
    backend = get_backend()
    assert backend.can_create_course(creator, TARGET) and not backend.can_create_course(author, TARGET)
    assert platform["creator"] == [(creator, "NewOrg"), (author, "NewOrg")]
    plans = restores.plan(author, [(str(TARGET), "backup:latest")], {})
    assert plans[0].error == restores.PERMISSION_DENIED
