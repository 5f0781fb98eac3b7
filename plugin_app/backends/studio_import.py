"""
What Studio does around ``import_course_from_xml``, for the modulestore backend's restore.

Studio's import task (cms/djangoapps/contentstore/tasks.py ``import_olx``) and its course creation
view (cms/djangoapps/contentstore/views/course.py ``_create_or_rerun_course``) do more than the
import itself; each step here names the one it follows. A refusal the platform words for the
author becomes the item's reason (``RestoreRefused``). edx-platform is imported inside the
functions only, so that this module imports anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from opaque_keys.edx.keys import CourseKey

from plugin_app.backends.base import RestoreRefused

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# _create_or_rerun_course's answers, word for word.
UNICODE_REFUSED = "Special characters not allowed in organization, course number, and course run."
DUPLICATE_COURSE = (
    "There is already a course defined with the same organization and course number. Please change "
    "either organization or course number to be unique."
)


def create_course(user: User, course_key: CourseKey) -> None:
    """Create the course as Studio's course creation does: the unicode check of its id (unless
    ``ALLOW_UNICODE_COURSE_ID``), then ``create_new_course`` (organization, store, instructor and
    role steps, discussion settings) with the wiki slug Studio gives a new course."""
    from cms.djangoapps.contentstore.views.course import create_new_course
    from common.djangoapps.util.string_utils import _has_non_ascii_characters
    from rest_framework.exceptions import ValidationError
    from xmodule.modulestore.exceptions import DuplicateCourseError

    org, number, run = course_key.org, course_key.course, course_key.run
    if not _unicode_course_ids_allowed() and any(
        _has_non_ascii_characters(part) for part in (org, number, run)
    ):
        raise RestoreRefused(UNICODE_REFUSED)
    try:
        create_new_course(user, org, number, run, {"wiki_slug": f"{org}.{number}.{run}"})
    except ValidationError as exc:  # e.g. an organization that does not exist (ORGANIZATIONS_AUTOCREATE off)
        raise RestoreRefused(" ".join(_messages(exc.detail))) from exc
    except DuplicateCourseError as exc:  # the same course in another letter case
        raise RestoreRefused(DUPLICATE_COURSE) from exc


@contextmanager
def around_import(store: Any, user: User, course_key: CourseKey) -> Iterator[None]:
    """``import_olx`` around its import: the entrance exam's milestone reference is removed
    first (``remove_entrance_exam_milestone_reference``, which deletes the old exam chapter); once
    the import succeeded, ``entrance_exam_id`` points at the imported exam chapter and its
    milestone is added; whatever the outcome, the discussion settings are synced. Studio's
    messages for the import's known errors become the reason."""
    from cms.djangoapps.contentstore.tasks import sync_discussion_settings
    from xmodule.modulestore.exceptions import DuplicateCourseError, InvalidProctoringProvider
    from xmodule.modulestore.xml_importer import CourseImportException

    if store.get_course(course_key).entrance_exam_enabled:
        from cms.djangoapps.contentstore.views.entrance_exam import remove_entrance_exam_milestone_reference

        remove_entrance_exam_milestone_reference(_request_of(user), course_key)
    try:
        yield
    except (CourseImportException, InvalidProctoringProvider, DuplicateCourseError) as exc:
        raise RestoreRefused(str(exc)) from exc
    else:
        _point_entrance_exam(store, user, course_key)
    finally:
        sync_discussion_settings(course_key, user)


def _point_entrance_exam(store: Any, user: User, course_key: CourseKey) -> None:
    from cms.djangoapps.contentstore.views.entrance_exam import add_entrance_exam_milestone
    from cms.djangoapps.models.settings.course_metadata import CourseMetadata

    course = store.get_course(course_key)  # reloaded: the import changed it
    if not course.entrance_exam_enabled:
        return
    chapter = store.get_items(
        course.id, qualifiers={"category": "chapter"}, settings={"is_entrance_exam": True}
    )[0]
    CourseMetadata.update_from_dict({"entrance_exam_id": str(chapter.location)}, course, user)
    add_entrance_exam_milestone(course.id, chapter)


def _request_of(user: User) -> Any:
    """The stand-in request Studio's task gives the entrance exam view's helper."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return request


def _unicode_course_ids_allowed() -> bool:
    """``ALLOW_UNICODE_COURSE_ID``: a setting of its own since the FEATURES dict was flattened, a
    FEATURES key before."""
    allowed = getattr(settings, "ALLOW_UNICODE_COURSE_ID", None)
    if allowed is None:
        allowed = getattr(settings, "FEATURES", {}).get("ALLOW_UNICODE_COURSE_ID", False)
    return bool(allowed)


def _messages(detail: Any) -> list[str]:
    """The texts of a DRF ValidationError's detail (a string, a list or a dict of them)."""
    if isinstance(detail, dict):
        return [text for value in detail.values() for text in _messages(value)]
    if isinstance(detail, list):
        return [text for value in detail for text in _messages(value)]
    return [str(detail)]
