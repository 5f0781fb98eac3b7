"""
Content libraries inside Open edX, through the platform's content library API.

Every platform name is imported inside the method that needs it (the module loads without
edx-platform). The calls, as in ``openedx/core/djangoapps/content_libraries`` (openedx-platform):

- ``models.ContentLibrary``: ``objects.get_by_key(key)`` (raises ``ContentLibrary.DoesNotExist``)
  ties the key to its ``learning_package`` and ``org``;
- ``api.require_permission_for_library_key(key, user, permissions.CAN_EDIT_THIS_CONTENT_LIBRARY)``
  raises ``PermissionDenied`` unless the user may edit the library (Bridgekeeper and openedx-authz);
- ``api.user_can_create_library(user)``: Studio's library-creator right;
- ``api.create_library(org=Organization, slug=, title=, learning_package=)``: what Studio's
  restore does with a package loaded under a staged key (it takes the library's key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opaque_keys.edx.locator import LibraryLocatorV2

from plugin_app.backends import learning_core
from plugin_app.backends.libraries import LibraryBackend, LibraryNotFound, LibrarySummary

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class PlatformLibraries(LibraryBackend):
    """Studio's v2 content libraries (``ContentLibrary`` rows and their learning packages)."""

    def list_libraries(self) -> list[LibrarySummary]:
        from openedx.core.djangoapps.content_libraries.models import ContentLibrary

        libraries = ContentLibrary.objects.select_related("org", "learning_package").order_by(
            "org__short_name", "slug"
        )
        return [
            LibrarySummary(
                str(library.library_key),
                library.org.short_name,
                library.learning_package.title if library.learning_package else "",
            )
            for library in libraries
        ]

    def package_id(self, key: LibraryLocatorV2) -> int | None:
        from openedx.core.djangoapps.content_libraries.models import ContentLibrary

        try:
            library = ContentLibrary.objects.get_by_key(key)
        except ContentLibrary.DoesNotExist:
            return None
        return library.learning_package_id

    def may_author(self, user: User, key: LibraryLocatorV2) -> bool:
        from django.core.exceptions import PermissionDenied
        from openedx.core.djangoapps.content_libraries import api, permissions
        from openedx.core.djangoapps.content_libraries.models import ContentLibrary

        if not (user and user.is_active):
            return False
        try:
            api.require_permission_for_library_key(key, user, permissions.CAN_EDIT_THIS_CONTENT_LIBRARY)
        except (PermissionDenied, ContentLibrary.DoesNotExist):
            return False
        return True

    def may_create(self, user: User, key: LibraryLocatorV2) -> bool:
        from openedx.core.djangoapps.content_libraries import api

        return bool(user and user.is_active and api.user_can_create_library(user))

    def create_problem(self, key: LibraryLocatorV2) -> str | None:
        from organizations.models import Organization

        if not Organization.objects.filter(short_name=key.org).exists():
            return f"The organization {key.org!r} does not exist: create it first (Studio needs it)."
        return None

    def create(self, key: LibraryLocatorV2, staged_id: int, user: User) -> None:
        from openedx.core.djangoapps.content_libraries import api
        from openedx_content.models_api import LearningPackage  # type: ignore[attr-defined]
        from organizations.models import Organization

        staged = LearningPackage.objects.get(id=staged_id)
        api.create_library(
            org=Organization.objects.get(short_name=key.org),
            slug=key.slug,
            title=staged.title,
            description=staged.description,
            learning_package=staged,
        )

    def swap(self, key: LibraryLocatorV2, staged_id: int, token: str) -> None:
        from openedx.core.djangoapps.content_libraries.models import ContentLibrary

        try:
            library = ContentLibrary.objects.get_by_key(key)
        except ContentLibrary.DoesNotExist:
            raise LibraryNotFound() from None
        if library.learning_package_id is None:
            raise LibraryNotFound("The library has no learning package to replace.")

        def attach(new_id: int) -> None:
            library.learning_package_id = new_id
            library.save(update_fields=["learning_package"])

        learning_core.replace(library.learning_package_id, staged_id, str(key), token, attach)
