"""
The modulestore backend's restore, against stand-ins of the exact edx-platform functions it calls.

Each stand-in follows the function of that name and module in edx-platform (cited in the
backend's docstrings, cms/djangoapps/contentstore/tasks.py ``import_olx`` and views/course.py
``_create_or_rerun_course``) and records how it was called; what runs for real is the app (the
tarball is unpacked and checked, the backup hold taken), Django REST framework's ValidationError
and opaque-keys. Issue 22, item 4: what Studio does around ``import_course_from_xml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opaque_keys.edx.keys import CourseKey
from rest_framework.exceptions import ValidationError

from plugin_app import restores
from plugin_app.backends import studio_import
from plugin_app.course_holds import held
from plugin_app.models import BackupCourse
from tests.fake_platform import install
from tests.tarballs import course_tarball

pytestmark = pytest.mark.django_db
TARGET = CourseKey.from_string("course-v1:NewOrg+N1+2030")
NO_ORGANIZATION = (
    "You must link this course to an organization in order to continue. Organization you selected "
    "does not exist in the system, you will need to add it to the system"
)


class CourseImportException(Exception):
    """xmodule/modulestore/xml_importer.py: the base of the importer's known errors."""


class DuplicateCourseError(Exception):
    """xmodule/modulestore/exceptions.py."""

    def __init__(self, course_id, existing_entry):
        super().__init__(f"Cannot create course {course_id}, which duplicates {existing_entry}")


class InvalidProctoringProvider(Exception):
    """xmodule/modulestore/exceptions.py."""

    def __init__(self, requested_provider, available_providers):
        super().__init__(
            f"The selected proctoring provider, {requested_provider}, is not a valid provider. "
            f"Please select from one of {available_providers}."
        )


@dataclass
class Chapter:
    location: Any
    is_entrance_exam: bool = False


@dataclass
class Course:
    id: CourseKey
    entrance_exam_enabled: bool = False
    entrance_exam_id: str = ""
    chapters: list[Chapter] = field(default_factory=list)


@dataclass
class Platform:
    """The platform's state and a log of the calls made, in order."""

    courses: dict[CourseKey, Course] = field(default_factory=dict)
    organizations: set[str] = field(default_factory=lambda: {"NewOrg"})
    calls: list[tuple] = field(default_factory=list)
    contentstore: object = field(default_factory=object)
    # What the tarball's import does to the course: an entrance exam chapter, or an error.
    imported_exam: bool = False
    import_error: Exception | None = None
    during_import: list = field(default_factory=list)


class FakeStore:
    """``xmodule.modulestore.django.modulestore()``: only what the restore calls."""

    def __init__(self, platform: Platform):
        self.platform = platform

    def has_course(self, key, ignore_case=False):
        for existing in self.platform.courses:
            if existing == key or (ignore_case and str(existing).lower() == str(key).lower()):
                return existing
        return None

    def get_course(self, key):
        return self.platform.courses.get(key)

    def get_items(self, course_key, qualifiers=None, settings=None):
        """Split's ``get_items``: blocks of the category whose settings match."""
        assert qualifiers == {"category": "chapter"}
        wanted = (settings or {}).get("is_entrance_exam")
        return [
            c
            for c in self.platform.courses[course_key].chapters
            if wanted is None or c.is_entrance_exam == wanted
        ]


@pytest.fixture
def platform(monkeypatch, local_storage, settings) -> Platform:
    settings.EXPORTBULK_COURSE_BACKEND = "modulestore"
    settings.ALLOW_UNICODE_COURSE_ID = False
    state = Platform()
    store = FakeStore(state)

    def create_new_course(user, org, number, run, fields):
        """views/course.py: ``ensure_organization`` (DRF ValidationError when missing), then the
        store's ``create_course``, which refuses a course that exists in another letter case."""
        state.calls.append(("create", user, org, number, run, fields))
        if org not in state.organizations:
            raise ValidationError(NO_ORGANIZATION)
        key = CourseKey.from_string(f"course-v1:{org}+{number}+{run}")
        existing = store.has_course(key, ignore_case=True)
        if existing:
            raise DuplicateCourseError(key, existing)
        state.courses[key] = Course(key)
        return state.courses[key]

    def import_course_from_xml(store_, user_id, data_dir, source_dirs=None, **kwargs):
        (name,) = source_dirs
        assert (Path(data_dir) / name / "course.xml").is_file()  # the unpacked course, still there
        state.calls.append(("import", store_, user_id, kwargs))
        for check in state.during_import:
            check()
        if state.import_error:
            raise state.import_error
        course = state.courses[kwargs["target_id"]]
        if state.imported_exam:
            course.entrance_exam_enabled = True
            course.chapters = [Chapter(course.id.make_usage_key("chapter", "exam"), is_entrance_exam=True)]
        return [course]

    def remove_entrance_exam_milestone_reference(request, course_key):
        """views/entrance_exam.py: deletes the exam chapters (as ``request.user``) and their milestones."""
        state.calls.append(("remove_exam_milestone", request.user, course_key))
        course = state.courses[course_key]
        course.chapters = [c for c in course.chapters if not c.is_entrance_exam]

    def update_from_dict(metadata, course, user):
        state.calls.append(("update_metadata", metadata, user))
        course.entrance_exam_id = metadata["entrance_exam_id"]

    install(
        monkeypatch,
        {
            "xmodule.modulestore.django": {"modulestore": lambda: store},
            "xmodule.contentstore.django": {"contentstore": lambda: state.contentstore},
            "xmodule.modulestore.exceptions": {
                "DuplicateCourseError": DuplicateCourseError,
                "InvalidProctoringProvider": InvalidProctoringProvider,
            },
            "xmodule.modulestore.xml_importer": {
                "import_course_from_xml": import_course_from_xml,
                "CourseImportException": CourseImportException,
            },
            "cms.djangoapps.contentstore.views.course": {"create_new_course": create_new_course},
            "cms.djangoapps.contentstore.views.entrance_exam": {
                "remove_entrance_exam_milestone_reference": remove_entrance_exam_milestone_reference,
                "add_entrance_exam_milestone": lambda course_id, block: state.calls.append(
                    ("add_exam_milestone", course_id, block.location)
                ),
            },
            "cms.djangoapps.contentstore.tasks": {
                "sync_discussion_settings": lambda course_key, user: state.calls.append(
                    ("sync_discussions", course_key, user)
                )
            },
            "cms.djangoapps.models.settings.course_metadata": {
                "CourseMetadata": type(
                    "CourseMetadata", (), {"update_from_dict": staticmethod(update_from_dict)}
                )
            },
            "common.djangoapps.util.string_utils": {
                "_has_non_ascii_characters": lambda text: any(ord(c) >= 128 for c in text)
            },
            "common.djangoapps.student.auth": {
                "is_content_creator": lambda user, org: user.username == "creator",
                "has_studio_write_access": lambda user, key: user.is_staff,
            },
        },
    )
    return state


def _stage(local_storage, data: bytes, course: CourseKey = TARGET) -> str:
    from plugin_app import storage

    name = storage.object_name("backups", str(course), "20261123T193000Z.tar.gz")
    path = local_storage / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return name


def _restore(local_storage, staff, course: CourseKey = TARGET, **options) -> restores.Restored:
    name = _stage(local_storage, course_tarball(), course)
    return restores.restore_one("p1-0", str(course), name, staff, options)


def steps(platform: Platform) -> list[str]:
    return [call[0] for call in platform.calls]


def test_a_missing_course_is_created_as_studio_does_then_imported_with_target_id(
    platform, local_storage, staff
):
    outcome = _restore(local_storage, staff)

    assert (outcome.outcome, outcome.error) == (restores.RESTORED, "")
    assert platform.calls[0] == ("create", staff, "NewOrg", "N1", "2030", {"wiki_slug": "NewOrg.N1.2030"})
    (_, store, user_id, kwargs) = platform.calls[1]
    assert isinstance(store, FakeStore) and user_id == staff.id
    assert kwargs == {
        "load_error_blocks": False,
        "static_content_store": platform.contentstore,
        "target_id": TARGET,
        "verbose": True,
    }
    # A new course has no entrance exam: nothing to remove nor to point at.
    assert steps(platform) == ["create", "import", "sync_discussions"]
    assert platform.calls[2] == ("sync_discussions", TARGET, staff)


def test_an_existing_course_is_imported_over_without_creating_it(platform, local_storage, staff):
    platform.courses[TARGET] = Course(TARGET)
    assert _restore(local_storage, staff, overwrite=True).outcome == restores.RESTORED
    assert steps(platform) == ["import", "sync_discussions"]


def test_the_old_entrance_exam_milestone_goes_before_the_import_and_the_new_one_comes_after(
    platform, local_storage, staff
):
    old_exam = Chapter(TARGET.make_usage_key("chapter", "old-exam"), is_entrance_exam=True)
    platform.courses[TARGET] = Course(TARGET, entrance_exam_enabled=True, chapters=[old_exam])
    platform.imported_exam = True

    assert _restore(local_storage, staff, overwrite=True).outcome == restores.RESTORED

    assert steps(platform) == [
        "remove_exam_milestone",
        "import",
        "update_metadata",
        "add_exam_milestone",
        "sync_discussions",
    ]
    assert platform.calls[0] == ("remove_exam_milestone", staff, TARGET)
    new_exam = TARGET.make_usage_key("chapter", "exam")
    assert platform.calls[2] == ("update_metadata", {"entrance_exam_id": str(new_exam)}, staff)
    assert platform.calls[3] == ("add_exam_milestone", TARGET, new_exam)
    assert platform.courses[TARGET].entrance_exam_id == str(new_exam)


@pytest.mark.parametrize(
    "error",
    [
        CourseImportException("The course could not be read: policy.json is broken."),
        InvalidProctoringProvider("nope", ["null", "proctortrack"]),
        DuplicateCourseError(TARGET, "course-v1:neworg+n1+2030"),
    ],
    ids=["import", "proctoring", "duplicate"],
)
def test_the_importers_known_errors_are_the_items_reason_as_studio_words_them(
    platform, local_storage, staff, error
):
    platform.courses[TARGET] = Course(TARGET, entrance_exam_enabled=True)
    platform.import_error = error

    outcome = _restore(local_storage, staff, overwrite=True)

    assert (outcome.outcome, outcome.error) == (restores.FAILED, str(error))
    # No entrance exam re-pointed after a failed import; the discussion settings are synced anyway.
    assert steps(platform) == ["remove_exam_milestone", "import", "sync_discussions"]


def test_an_unknown_import_error_is_not_shown_to_the_caller(platform, local_storage, staff):
    platform.courses[TARGET] = Course(TARGET)
    platform.import_error = RuntimeError("/openedx/data/secret path")
    with pytest.raises(RuntimeError):  # the lifecycle logs it and fails the item with its generic reason
        _restore(local_storage, staff, overwrite=True)
    assert steps(platform) == ["import", "sync_discussions"]


def test_a_unicode_course_id_is_refused_before_creation_unless_the_platform_allows_it(
    platform, local_storage, staff, settings
):
    unicode_course = CourseKey.from_string("course-v1:NewOrg+Ünï+2030")

    outcome = _restore(local_storage, staff, unicode_course)
    assert (outcome.outcome, outcome.error) == (restores.FAILED, studio_import.UNICODE_REFUSED)
    assert platform.calls == []

    settings.ALLOW_UNICODE_COURSE_ID = True
    assert _restore(local_storage, staff, unicode_course).outcome == restores.RESTORED
    assert steps(platform) == ["create", "import", "sync_discussions"]


def test_the_feature_flag_of_older_platforms_allows_unicode_too(platform, local_storage, staff, settings):
    del settings.ALLOW_UNICODE_COURSE_ID
    settings.FEATURES = {"ALLOW_UNICODE_COURSE_ID": True}
    unicode_course = CourseKey.from_string("course-v1:NewOrg+Ünï+2030")
    assert _restore(local_storage, staff, unicode_course).outcome == restores.RESTORED


def test_course_creation_refusals_are_the_items_reason(platform, local_storage, staff):
    missing_org = CourseKey.from_string("course-v1:NoSuchOrg+N1+2030")
    outcome = _restore(local_storage, staff, missing_org)
    assert (outcome.outcome, outcome.error) == (restores.FAILED, NO_ORGANIZATION)

    platform.courses[CourseKey.from_string("course-v1:neworg+n1+2030")] = Course(TARGET)
    outcome = _restore(local_storage, staff)
    assert (outcome.outcome, outcome.error) == (restores.FAILED, studio_import.DUPLICATE_COURSE)
    assert "import" not in steps(platform)


def test_the_course_is_held_from_backups_while_the_restore_writes(platform, local_storage, staff):
    def a_backup_finds_the_course_held():
        assert BackupCourse.objects.get(course_id=str(TARGET)).held_by == "restore:p1-0"
        with held(str(TARGET), "backup-run") as course:
            assert course is None  # a backup run gets BUSY, not a half-imported course

    platform.during_import.append(a_backup_finds_the_course_held)
    assert _restore(local_storage, staff).outcome == restores.RESTORED
    assert BackupCourse.objects.get(course_id=str(TARGET)).held_by == ""  # released


def test_a_restore_during_a_running_backup_fails_with_a_reason(platform, local_storage, staff):
    platform.courses[TARGET] = Course(TARGET)
    with held(str(TARGET), "backup-run") as course:
        assert course is not None
        outcome = _restore(local_storage, staff, overwrite=True)
    assert (outcome.outcome, outcome.error) == (restores.FAILED, restores.BACKUP_RUNNING)
    assert platform.calls == []


def test_a_refused_tarball_never_reaches_the_importer(platform, local_storage, staff):
    name = _stage(local_storage, course_tarball()[:100])

    outcome = restores.restore_one("p1-0", str(TARGET), name, staff, {})

    assert outcome.outcome == restores.FAILED and "truncated" in outcome.error
    assert platform.calls == []


def test_course_creation_right_is_studios_is_content_creator(platform, django_user_model):
    from plugin_app.backends import get_backend

    creator = django_user_model.objects.create_user("creator")
    author = django_user_model.objects.create_user("someone")
    backend = get_backend()
    assert backend.can_create_course(creator, TARGET) and not backend.can_create_course(author, TARGET)
    plans = restores.plan(author, [(str(TARGET), "backup:latest")], {})
    assert plans[0].error == restores.PERMISSION_DENIED
