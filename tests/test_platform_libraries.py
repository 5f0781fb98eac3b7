"""
Libraries inside Open edX: fakes of the exact edx-platform names the library backend calls
(``openedx.core.djangoapps.content_libraries`` and ``organizations.models``, cited in
``plugin_app/backends/platform_libraries.py``); Learning Core itself runs for real.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest
from django.core.exceptions import PermissionDenied
from opaque_keys.edx.locator import LibraryLocatorV2

from plugin_app import contexts, library_restores, restores
from plugin_app.backends import learning_core
from plugin_app.backends.libraries import get_library_backend
from plugin_app.backends.platform_libraries import PlatformLibraries
from tests.libraries import comparable, dump_bytes, make_library
from tests.test_backups import run
from tests.test_libraries import stage

pytestmark = pytest.mark.django_db
EDIT = "content_libraries.edit_library"


@dataclass
class Org:
    short_name: str


@dataclass
class FakeLibrary:
    """``ContentLibrary``: org, slug and the learning package it ties the key to."""

    org: Org
    slug: str
    learning_package_id: int | None
    saved: list = field(default_factory=list)

    @property
    def library_key(self) -> LibraryLocatorV2:
        return LibraryLocatorV2(org=self.org.short_name, slug=self.slug)

    @property
    def learning_package(self):
        from openedx_content.models_api import LearningPackage

        return LearningPackage.objects.get(id=self.learning_package_id)

    def save(self, update_fields=None):
        self.saved.append(update_fields)


class Platform:
    """The fake platform's state and the record of its calls."""

    def __init__(self):
        self.libraries: dict[tuple[str, str], FakeLibrary] = {}
        self.grants: set[tuple[str, str]] = set()  # (username, library key) with edit rights
        self.orgs = {"OrgA", "OrgB"}
        self.created: list[dict] = []

    def add(self, ref: str, **kwargs) -> FakeLibrary:
        key = LibraryLocatorV2.from_string(ref)
        library = FakeLibrary(Org(key.org), key.slug, make_library(ref, **kwargs))
        self.libraries[(key.org, key.slug)] = library
        return library


@pytest.fixture
def platform(monkeypatch, settings, bucket):
    settings.EXPORTBULK_COURSE_BACKEND = "modulestore"
    state = Platform()

    class DoesNotExist(Exception):
        pass

    class Manager:
        def get_by_key(self, key):
            assert isinstance(key, LibraryLocatorV2)
            try:
                return state.libraries[(key.org, key.slug)]
            except KeyError:
                raise DoesNotExist() from None

        def select_related(self, *names):
            return self

        def order_by(self, *names):
            return sorted(state.libraries.values(), key=lambda lib: (lib.org.short_name, lib.slug))

    content_library = types.SimpleNamespace(objects=Manager(), DoesNotExist=DoesNotExist)

    def require_permission_for_library_key(key, user, permission):
        library = content_library.objects.get_by_key(key)
        granted = user.is_staff or (user.username, str(key)) in state.grants  # Studio: global staff may
        if permission != EDIT or not granted:
            raise PermissionDenied
        return library

    def create_library(org, slug, title, description="", learning_package=None, **kwargs):
        """As Studio's: the passed package takes the library's key and the title."""
        from openedx_content import api

        key = LibraryLocatorV2(org=org.short_name, slug=slug)
        state.created.append({"org": org.short_name, "slug": slug, "title": title})
        api.update_learning_package(learning_package.id, str(key), title, description)
        state.libraries[(org.short_name, slug)] = FakeLibrary(org, slug, learning_package.id)

    class OrgManager:
        def filter(self, short_name):
            return types.SimpleNamespace(exists=lambda: short_name in state.orgs)

        def get(self, short_name):
            assert short_name in state.orgs
            return Org(short_name)

    modules = {
        "openedx": {},
        "openedx.core": {},
        "openedx.core.djangoapps": {},
        "openedx.core.djangoapps.content_libraries": {},
        "openedx.core.djangoapps.content_libraries.models": {"ContentLibrary": content_library},
        "openedx.core.djangoapps.content_libraries.permissions": {"CAN_EDIT_THIS_CONTENT_LIBRARY": EDIT},
        "openedx.core.djangoapps.content_libraries.api": {
            "require_permission_for_library_key": require_permission_for_library_key,
            "user_can_create_library": lambda user: user.is_staff,
            "create_library": create_library,
        },
        "organizations.models": {"Organization": types.SimpleNamespace(objects=OrgManager())},
    }
    for dotted, attributes in modules.items():
        module = types.ModuleType(dotted)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, dotted, module)
    for dotted in list(modules)[:-1]:
        parent, _, child = dotted.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[dotted])
    return state


@pytest.fixture
def editor(django_user_model, platform):
    user = django_user_model.objects.create_user("editor", "editor@example.com", "pw")
    platform.grants.add(("editor", "lib:OrgA:bank"))
    return user


def test_the_platform_backend_is_chosen_with_the_modulestore(platform):
    assert isinstance(get_library_backend(), PlatformLibraries)


def test_libraries_are_found_and_authored_through_the_platform_api(platform, editor):
    platform.add("lib:OrgA:bank")
    platform.add("lib:OrgB:other")
    assert [s.library_id for s in get_library_backend().list_libraries()] == [
        "lib:OrgA:bank",
        "lib:OrgB:other",
    ]
    backend = get_library_backend()
    assert backend.may_author(editor, LibraryLocatorV2.from_string("lib:OrgA:bank"))
    assert not backend.may_author(editor, LibraryLocatorV2.from_string("lib:OrgB:other"))
    assert contexts.requested_item(editor, 0, "lib:OrgA:bank").error == ""
    assert contexts.requested_item(editor, 0, "lib:OrgB:other").error == contexts.LIBRARY_PERMISSION_DENIED
    assert contexts.requested_item(editor, 0, "lib:OrgA:gone").error == contexts.LIBRARY_PERMISSION_DENIED


def test_a_platform_library_is_backed_up_as_learning_cores_zip(platform, editor, tmp_path):
    platform.add("lib:OrgA:bank")
    _p, manifest = run(editor, ["lib:OrgA:bank"])
    (entry,) = manifest["courses"]
    assert entry["status"] == "exported" and entry["key"].endswith(".zip")
    from plugin_app import storage

    with storage.get_storage().open(entry["key"], "rb") as stream:
        assert comparable(stream.read()) == comparable(dump_bytes("lib:OrgA:bank", tmp_path))
    assert run(editor, ["lib:OrgA:bank"])[1]["courses"][0]["status"] == "unchanged"


def test_a_new_key_is_created_as_studio_creates_a_restored_library(platform, staff, tmp_path):
    platform.add("lib:OrgA:bank")
    name = stage("backups/lib:OrgA:bank/20261123T193000Z.zip", dump_bytes("lib:OrgA:bank", tmp_path))
    assert library_restores.plan_one(staff, "lib:OrgB:copy", name, {}).error == ""

    done = library_restores.restore_one("p-0", "lib:OrgB:copy", name, staff, {}, existed=False)

    assert (done.outcome, done.error) == (restores.RESTORED, "")
    assert platform.created == [{"org": "OrgB", "slug": "copy", "title": "A library"}]
    copy = platform.libraries[("OrgB", "copy")]
    assert learning_core.package_ref(copy.learning_package_id) == "lib:OrgB:copy"
    assert comparable(dump_bytes("lib:OrgB:copy", tmp_path)) == comparable(
        dump_bytes("lib:OrgA:bank", tmp_path)
    )


def test_overwrite_points_the_content_library_at_the_loaded_package(platform, editor, tmp_path):
    bank = platform.add("lib:OrgA:bank")
    platform.add("lib:OrgB:other", title="Other")
    old_package = bank.learning_package_id
    name = stage("backups/lib:OrgA:bank/20261123T193000Z.zip", dump_bytes("lib:OrgB:other", tmp_path))

    done = library_restores.restore_one("p-1", "lib:OrgA:bank", name, editor, {"overwrite": True})

    assert done.outcome == restores.RESTORED
    assert bank.learning_package_id != old_package and bank.saved == [["learning_package"]]
    assert learning_core.package_ref(bank.learning_package_id) == "lib:OrgA:bank"
    assert learning_core.package_id(f"{learning_core.REPLACED_PREFIX}p-1") is None  # the old one is deleted
    assert comparable(dump_bytes("lib:OrgA:bank", tmp_path)) == comparable(
        dump_bytes("lib:OrgB:other", tmp_path)
    )


def test_a_library_of_an_unknown_organization_is_refused_before_anything_is_written(
    platform, staff, tmp_path
):
    platform.add("lib:OrgA:bank")
    name = stage("backups/lib:OrgA:bank/20261123T193000Z.zip", dump_bytes("lib:OrgA:bank", tmp_path))
    packages = learning_core.package_refs("")

    done = library_restores.restore_one("p-2", "lib:NoOrg:x", name, staff, {}, existed=False)

    assert done.error == "The organization 'NoOrg' does not exist: create it first (Studio needs it)."
    assert learning_core.package_refs("") == packages and platform.created == []
