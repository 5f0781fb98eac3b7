"""
Stand-ins for the edx-platform models that openedx-authz's scope models point at (through its
``OPENEDX_AUTHZ_COURSE_OVERVIEW_MODEL`` and ``OPENEDX_AUTHZ_CONTENT_LIBRARY_MODEL`` settings):
the platform's ``CourseOverview`` and ``ContentLibrary``, with the fields and lookups authz uses.
openedx-authz 0.23 ships such models for its own tests, 1.x does not; these serve both.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from opaque_keys.edx.django.models import CourseKeyField
from opaque_keys.edx.keys import CourseKey


class CourseOverview(models.Model):
    """openedx/core/djangoapps/content/course_overviews/models.py: its key and ``get_from_id``
    (here made on first use: every course a test names exists)."""

    id = CourseKeyField(db_index=True, primary_key=True, max_length=255)
    display_name = models.TextField(null=True)

    @classmethod
    def get_from_id(cls, course_key: CourseKey | str) -> CourseOverview:
        overview, _created = cls.objects.get_or_create(id=CourseKey.from_string(str(course_key)))
        return overview


class ContentLibraryManager(models.Manager["ContentLibrary"]):
    def get_by_key(self, library_key: Any) -> ContentLibrary:
        library, _created = self.get_or_create(locator=str(library_key))
        return library


class ContentLibrary(models.Model):
    """openedx/core/djangoapps/content_libraries/models.py: looked up by its key."""

    locator = models.CharField(max_length=255, unique=True)

    objects = ContentLibraryManager()
