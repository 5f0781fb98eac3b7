"""
Issue 22, item 3: the modulestore backend checks access as Studio's own views do, against the
real openedx-authz roles (course_staff, course_editor, course_auditor), with the course's
``authz.enable_course_authoring`` flag on (authz alone decides) and off (Studio write access).
Only the platform's parts are stand-ins (tests/fake_platform.py): the flag lookup, the legacy
student roles, and ``user_has_course_permission`` as openedx/core/djangoapps/authz/decorators.py
writes it.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from opaque_keys.edx.keys import CourseKey

from plugin_app.backends.base import CoursePermission
from plugin_app.backends.modulestore import ModulestoreBackend
from tests.fake_platform import CourseAuthoring, install

pytestmark = pytest.mark.django_db
COURSE = CourseKey.from_string("course-v1:Authz+A1+2026")
EXPORT, IMPORT, UPLOAD = CoursePermission.EXPORT, CoursePermission.IMPORT, CoursePermission.UPLOAD


@pytest.fixture
def authoring(monkeypatch, settings) -> CourseAuthoring:
    """The platform's authoring checks, with openedx-authz's own policies loaded (as its
    ``load_policies`` command seeds a deployment's database)."""
    settings.EXPORTBULK_COURSE_BACKEND = "modulestore"
    call_command("load_policies")
    platform = CourseAuthoring()
    platform.install(monkeypatch)
    return platform


@pytest.fixture
def users(django_user_model) -> dict[str, object]:
    """A user per openedx-authz course role on COURSE, plus one with only Studio write access."""
    from openedx_authz.api import assign_role_to_user_in_scope

    made = {}
    for role in ("course_staff", "course_editor", "course_auditor"):
        made[role] = django_user_model.objects.create_user(role)
        assert assign_role_to_user_in_scope(role, role, str(COURSE))
    made["legacy_writer"] = django_user_model.objects.create_user("legacy_writer")
    return made


def decisions(users: dict) -> dict[str, tuple[bool, bool, bool]]:
    backend = ModulestoreBackend()
    return {
        name: tuple(backend.has_write_access(user, COURSE, p) for p in (EXPORT, IMPORT, UPLOAD))
        for name, user in users.items()
    }


def test_with_authz_on_only_the_authz_roles_decide(authoring, users):
    authoring.authz_courses.add(str(COURSE))
    authoring.writers.add(("legacy_writer", str(COURSE)))
    assert decisions(users) == {
        # export, import (restore), upload (view + create + edit files)
        "course_staff": (True, True, True),
        "course_editor": (False, False, True),
        "course_auditor": (False, False, False),  # may view files, not create them
        "legacy_writer": (False, False, False),  # Studio write access counts for nothing here
    }


def test_with_authz_off_studio_write_access_decides_whatever_the_roles(authoring, users):
    authoring.writers.add(("legacy_writer", str(COURSE)))
    assert decisions(users) == {
        "course_staff": (False, False, False),
        "course_editor": (False, False, False),
        "course_auditor": (False, False, False),
        "legacy_writer": (True, True, True),
    }


def test_the_flag_is_per_course(authoring, users):
    other = CourseKey.from_string("course-v1:Authz+A2+2026")
    authoring.authz_courses.add(str(other))
    authoring.writers.add(("course_editor", str(COURSE)))
    backend = ModulestoreBackend()
    assert backend.has_write_access(users["course_editor"], COURSE, IMPORT)  # legacy: write access
    assert not backend.has_write_access(users["course_editor"], other, UPLOAD)  # no role on it


def test_a_platform_without_authz_checks_write_access_only(monkeypatch, settings, django_user_model):
    """Before Verawood there is no openedx/core/djangoapps/authz: Studio checks write access."""
    settings.EXPORTBULK_COURSE_BACKEND = "modulestore"
    platform = CourseAuthoring(writers={("w", str(COURSE))})
    install(
        monkeypatch,
        {"common.djangoapps.student.auth": {"has_studio_write_access": platform.has_studio_write_access}},
    )
    writer, stranger = django_user_model.objects.create_user("w"), django_user_model.objects.create_user("s")
    for permission in CoursePermission:
        assert ModulestoreBackend().has_write_access(writer, COURSE, permission)
        assert not ModulestoreBackend().has_write_access(stranger, COURSE, permission)


# Each kind of request checks its own permission --------------------------------------------


@pytest.fixture
def authz_course(authoring, monkeypatch) -> CourseAuthoring:
    """COURSE exists and has authz on: Studio write access counts for nothing there."""
    authoring.authz_courses.add(str(COURSE))
    install(
        monkeypatch,
        {
            "xmodule.modulestore.django": {
                "modulestore": lambda: type(
                    "Store", (), {"has_course": lambda self, key, **kw: key == COURSE}
                )()
            }
        },
    )
    return authoring


def test_export_and_backup_requests_need_the_export_permission(authz_course, users):
    from plugin_app import exports

    authz_course.writers.add(("course_editor", str(COURSE)))
    editor, staff = users["course_editor"], users["course_staff"]
    assert (
        exports.requested_item(editor, 0, str(COURSE), ModulestoreBackend()).error
        == exports.PERMISSION_DENIED
    )
    assert exports.requested_item(staff, 0, str(COURSE), ModulestoreBackend()).error == ""


def test_restore_requests_need_the_import_permission(authz_course, users):
    from plugin_app import restores

    authz_course.writers.add(("course_editor", str(COURSE)))
    pairs = [(str(COURSE), "backup:latest")]
    assert restores.plan(users["course_editor"], pairs, {})[0].error == restores.PERMISSION_DENIED
    assert restores.plan(users["course_staff"], pairs, {})[0].error != restores.PERMISSION_DENIED


def test_bulk_upload_needs_the_files_permissions(authz_course, users):
    from plugin_app import uploads

    authz_course.writers.add(("course_auditor", str(COURSE)))
    assert uploads._check_course_access(users["course_editor"], {str(COURSE): [2]}) == []
    (refusal,) = uploads._check_course_access(users["course_auditor"], {str(COURSE): [2]})
    assert refusal.row == 2 and str(COURSE) in refusal.message


@pytest.mark.parametrize(
    ("kind", "withdrawn"),
    [("upload", False), ("export", True), ("backup", True), ("restore", True)],
)
def test_shown_processes_recheck_the_permission_of_their_kind(authz_course, users, kind, withdrawn):
    """An editor keeps what their bulk upload made, but not an export of the same course."""
    from plugin_app import access
    from plugin_app.models import BulkItem, BulkProcess

    editor = users["course_editor"]
    process = BulkProcess.objects.create(kind=kind, owner=editor)
    BulkItem.objects.create(process=process, position=0, course_id=str(COURSE))
    refused = access.refused_courses(editor, str(process.process_id))
    assert refused == ({str(COURSE)} if withdrawn else set())
