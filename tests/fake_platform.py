"""
Stand-ins for edx-platform modules, which cannot be installed here (modulestore, contentstore,
Studio's views and tasks, student roles, course overviews, waffle course flags).

Everything else the backend calls runs for real: edxval, openedx-authz and opaque-keys are
installed (``make install``) and migrated on the test database. Each stand-in does what the
platform's function of that name does with the arguments that matter here (its source is cited
where it is defined).
"""

from __future__ import annotations

import enum
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest


def install(monkeypatch: pytest.MonkeyPatch, modules: dict[str, dict[str, Any]]) -> None:
    """Make each dotted module importable with the given attributes (parents created empty)."""
    for dotted, attributes in modules.items():
        parts = dotted.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if parent not in sys.modules:
                monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
        module = types.ModuleType(dotted)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, dotted, module)


class LegacyAuthoringPermission(enum.Enum):
    """openedx/core/djangoapps/authz/constants.py."""

    READ = "read"
    WRITE = "write"


@dataclass
class CourseAuthoring:
    """Who may author which course, the platform's way.

    ``writers``: (username, course id) pairs with Studio write access (student roles: the legacy
    ``has_studio_write_access``); global staff have it everywhere. ``authz_courses``: the courses
    whose ``authz.enable_course_authoring`` course waffle flag is on (openedx/core/toggles.py
    ``enable_authz_course_authoring``). ``creators``: usernames holding the course creator role
    (``is_content_creator``). Roles of openedx-authz are the real package's.
    """

    writers: set[tuple[str, str]] = field(default_factory=set)
    authz_courses: set[str] = field(default_factory=set)
    creators: set[str] = field(default_factory=set)

    def is_content_creator(self, user: Any, org: str) -> bool:
        return user.username in self.creators

    def has_studio_write_access(self, user: Any, course_key: Any) -> bool:
        return bool(user.is_staff or (user.username, str(course_key)) in self.writers)

    def enable_authz_course_authoring(self, course_key: Any) -> bool:
        return str(course_key) in self.authz_courses

    def user_has_course_permission(
        self, user: Any, authz_permission: str, course_key: Any, legacy_permission: Any = None
    ) -> bool:
        """openedx/core/djangoapps/authz/decorators.py: openedx-authz alone where the course's flag
        is on; elsewhere the legacy check named by ``legacy_permission`` (none: refused)."""
        from openedx_authz import api as authz_api

        if self.enable_authz_course_authoring(course_key):
            return bool(authz_api.is_user_allowed(user.username, authz_permission, str(course_key)))
        legacy = {LegacyAuthoringPermission.WRITE: self.has_studio_write_access}.get(legacy_permission)
        return bool(legacy and legacy(user, course_key))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        install(
            monkeypatch,
            {
                "common.djangoapps.student.auth": {
                    "has_studio_write_access": self.has_studio_write_access,
                    "is_content_creator": self.is_content_creator,
                },
                "openedx.core.toggles": {"enable_authz_course_authoring": self.enable_authz_course_authoring},
                "openedx.core.djangoapps.authz.constants": {
                    "LegacyAuthoringPermission": LegacyAuthoringPermission
                },
                "openedx.core.djangoapps.authz.decorators": {
                    "user_has_course_permission": self.user_has_course_permission
                },
            },
        )
