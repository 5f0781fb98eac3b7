"""
Issue 22, item 6: a run over every course (``exportbulk_backup --all``, an export or backup of all
courses) reads the course overviews, and an overview can outlive its course. Each is checked
against the course index, so that a stale row is left out instead of failing the run.
Stand-ins: ``CourseOverview`` and ``SplitModulestoreCourseIndex`` (edx-platform models).
"""

from __future__ import annotations

import logging
import types
from datetime import UTC, datetime

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import exports
from plugin_app.backends.modulestore import ModulestoreBackend
from tests.fake_platform import CourseAuthoring, install

LIVE = [CourseKey.from_string(f"course-v1:Org+C{n}+2026") for n in (1, 2)]
DELETED = CourseKey.from_string("course-v1:Org+Gone+2020")


def _overview(key: CourseKey) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        id=key,
        display_name_with_default=f"Course {key.course}",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=None,
        self_paced=False,
    )


@pytest.fixture
def platform(monkeypatch, settings):
    """Overviews of two live courses and of a deleted one; the course index (split's, in MySQL)
    holds the live courses and a legacy library."""
    settings.EXPORTBULK_COURSE_BACKEND = "modulestore"
    index = [*LIVE, CourseKey.from_string("library-v1:Org+Lib")]
    overviews = [_overview(key) for key in (LIVE[0], DELETED, LIVE[1])]
    install(
        monkeypatch,
        {
            "openedx.core.djangoapps.content.course_overviews.models": {
                "CourseOverview": types.SimpleNamespace(get_all_courses=lambda: overviews)
            },
            "common.djangoapps.split_modulestore_django.models": {
                "SplitModulestoreCourseIndex": types.SimpleNamespace(
                    objects=types.SimpleNamespace(values_list=lambda field, flat: list(index))
                )
            },
        },
    )
    authoring = CourseAuthoring()
    authoring.install(monkeypatch)
    return authoring


def test_an_overview_without_a_course_is_left_out_and_logged(platform, caplog):
    with caplog.at_level(logging.WARNING, logger="plugin_app.backends.modulestore"):
        courses = ModulestoreBackend().list_courses()
    assert [c.course_id for c in courses] == [str(key) for key in LIVE]
    assert courses[0].display_name == "Course C1" and courses[0].start == "2026-01-01T00:00:00Z"
    assert str(DELETED) in caplog.text


def test_every_course_of_a_run_over_all_courses_exists(platform, django_user_model, db):
    """What ``exportbulk_backup --all`` backs up: the service user's authorable courses."""
    service = django_user_model.objects.create_user("exportbulk", is_staff=True)
    assert exports.authorable_courses(service) == [str(key) for key in LIVE]
