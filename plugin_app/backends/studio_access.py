"""
Who may export, import or upload to a course inside edx-platform: Studio's own check.

Studio's views call ``user_has_course_permission`` (openedx/core/djangoapps/authz/decorators.py):
where the course has ``authz.enable_course_authoring`` on, only openedx-authz decides; elsewhere
Studio write access does (``LegacyAuthoringPermission.WRITE``, ``has_studio_write_access``). The
permissions are those of Studio's views: the import and export views check
``courses.import_course`` / ``courses.export_course``; the files page checks ``courses.view_files``,
then ``create_files`` for a new file and ``edit_files`` for a change
(cms/djangoapps/contentstore/asset_storage_handlers.py), and a bulk upload both creates and
replaces files. edx-platform is imported inside the function only, so that this module imports
anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opaque_keys.edx.keys import CourseKey

from plugin_app.backends.base import CoursePermission

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def user_may(user: User, course_key: CourseKey, permission: CoursePermission) -> bool:
    """Whether Studio would let ``user`` do ``permission`` to the course. A platform without the
    authz module (before Verawood) checks write access only, as its Studio does."""
    try:
        from openedx.core.djangoapps.authz.constants import LegacyAuthoringPermission
        from openedx.core.djangoapps.authz.decorators import user_has_course_permission
    except ImportError:
        from common.djangoapps.student.auth import has_studio_write_access

        return bool(has_studio_write_access(user, course_key))
    from openedx_authz.constants import permissions

    needed = {
        CoursePermission.EXPORT: [permissions.COURSES_EXPORT_COURSE],
        CoursePermission.IMPORT: [permissions.COURSES_IMPORT_COURSE],
        CoursePermission.UPLOAD: [
            permissions.COURSES_VIEW_FILES,
            permissions.COURSES_CREATE_FILES,
            permissions.COURSES_EDIT_FILES,
        ],
    }[permission]
    return all(
        user_has_course_permission(user, each.identifier, course_key, LegacyAuthoringPermission.WRITE)
        for each in needed
    )
