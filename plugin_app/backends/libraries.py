"""
The library backend: v2 content libraries, beside the course backend.

A library (``lib:Org:slug``) is a learning package in Learning Core. Inside Open edX the platform's
``ContentLibrary`` ties the key to its package, org and permissions (``platform_libraries``);
standalone, the learning package's own reference is the library key, and staff or members of the
group ``library_authors:<key>`` author it. Both dump and load through ``learning_core``.
"""

from __future__ import annotations

import abc
import functools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
from opaque_keys import InvalidKeyError
from opaque_keys.edx.locator import LibraryLocatorV2

from plugin_app.backends import get_backend, learning_core
from plugin_app.backends.base import CourseNotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Named, not imported: the platform implementation builds on this module's port.
_PLATFORM = "plugin_app.backends.platform_libraries.PlatformLibraries"


class LibraryNotFound(CourseNotFound):
    """The library key is valid but no such library exists."""

    reason = "Library not found."


@dataclass(frozen=True)
class LibrarySummary:
    library_id: str
    org: str
    title: str


def library_key(context_id: str) -> LibraryLocatorV2 | None:
    """The v2 library key ``lib:Org:slug``, or None for anything else."""
    if not is_library(context_id):  # a course id: no parse (the status API asks for each course)
        return None
    try:
        return LibraryLocatorV2.from_string(context_id)
    except InvalidKeyError:
        return None


def is_library(context_id: str) -> bool:
    """Whether the id names a library (``lib:``) rather than a course: the dispatch of every kind."""
    return context_id.startswith("lib:")


def author_group_name(key: LibraryLocatorV2) -> str:
    """The Django group whose members may author the library standalone (besides staff)."""
    return f"library_authors:{key}"


class LibraryBackend(abc.ABC):
    """The libraries of one deployment: who may author them, and their learning packages."""

    @abc.abstractmethod
    def list_libraries(self) -> list[LibrarySummary]:
        """Every library, ordered by key."""

    @abc.abstractmethod
    def package_id(self, key: LibraryLocatorV2) -> int | None:
        """The id of the library's learning package, or None when there is no such library."""

    @abc.abstractmethod
    def may_author(self, user: User, key: LibraryLocatorV2) -> bool:
        """Whether ``user`` may edit the library (and so back it up, read its backups, restore it)."""

    @abc.abstractmethod
    def may_create(self, user: User, key: LibraryLocatorV2) -> bool:
        """Whether ``user`` may create a library (Studio's library-creator right)."""

    def create_problem(self, key: LibraryLocatorV2) -> str | None:
        """Why a library with this key cannot be created, whoever asks (one sentence), or None."""
        return None

    @abc.abstractmethod
    def create(self, key: LibraryLocatorV2, staged_id: int, user: User) -> None:
        """Make the loaded package ``staged_id`` the new library ``key`` (inside a transaction)."""

    @abc.abstractmethod
    def swap(self, key: LibraryLocatorV2, staged_id: int, token: str) -> None:
        """Make the loaded package ``staged_id`` the content of the existing library, in one
        transaction: a failure leaves the old content whole."""

    # Shared: Learning Core's own calls ----------------------------------------------------------

    def exists(self, key: LibraryLocatorV2) -> bool:
        return self.package_id(key) is not None

    def fingerprint(self, key: LibraryLocatorV2) -> str:
        """A digest that moves with every content change, without a dump. Raises LibraryNotFound."""
        found = self.package_id(key)
        if found is None:
            raise LibraryNotFound()
        return learning_core.fingerprint(found)

    @contextmanager
    def dumped(self, key: LibraryLocatorV2) -> Iterator[Path]:
        """The library as Learning Core's zip, in a temporary file. Raises LibraryNotFound."""
        found = self.package_id(key)
        if found is None:
            raise LibraryNotFound()
        with tempfile.TemporaryDirectory(prefix="exportbulk-library-") as folder:
            path = Path(folder) / "library.zip"
            learning_core.dump(learning_core.package_ref(found), path)
            yield path


class StandaloneLibraries(LibraryBackend):
    """Libraries as bare learning packages whose reference is the library key."""

    def list_libraries(self) -> list[LibrarySummary]:
        return [
            LibrarySummary(ref, key.org, title)
            for ref, title in learning_core.package_refs("lib:")
            if (key := library_key(ref)) is not None
        ]

    def package_id(self, key: LibraryLocatorV2) -> int | None:
        return learning_core.package_id(str(key))

    def may_author(self, user: User, key: LibraryLocatorV2) -> bool:
        if not (user and user.is_active):
            return False
        return user.is_staff or Group.objects.filter(user=user, name=author_group_name(key)).exists()

    def may_create(self, user: User, key: LibraryLocatorV2) -> bool:
        """Standalone has no library-creator role: staff create libraries."""
        return bool(user and user.is_active and user.is_staff)

    def create(self, key: LibraryLocatorV2, staged_id: int, user: User) -> None:
        learning_core.rename(staged_id, str(key))

    def swap(self, key: LibraryLocatorV2, staged_id: int, token: str) -> None:
        old = self.package_id(key)
        if old is None:
            raise LibraryNotFound()
        learning_core.replace(old, staged_id, str(key), token)


@functools.cache
def get_library_backend() -> LibraryBackend:
    """Inside Open edX (the modulestore course backend) the platform's libraries; else standalone."""
    if get_backend().name == "modulestore":
        platform: type[LibraryBackend] = import_string(_PLATFORM)
        return platform()
    return StandaloneLibraries()


@receiver(setting_changed)
def _forget_backend(setting: str, **kwargs: Any) -> None:
    if setting == "EXPORTBULK_COURSE_BACKEND":
        get_library_backend.cache_clear()
