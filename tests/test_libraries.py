"""
v2 content libraries in backups and restores, in-process: Learning Core (openedx-core) runs for
real on the test database, the bucket is moto's S3 server over HTTP.
"""

from __future__ import annotations

import hashlib
import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from opaque_keys.edx.locator import LibraryLocatorV2

from plugin_app import backups, contexts, library_restores, restores, storage
from plugin_app.backends import learning_core
from plugin_app.backends.libraries import author_group_name, get_library_backend
from plugin_app.data import ItemStatus
from tests.libraries import change_component, comparable, dump_bytes, make_library, members_of, zip_of
from tests.test_backups import run

pytestmark = pytest.mark.django_db
LIB = "lib:OrgA:questions"
OTHER = "lib:OrgB:handouts"


@pytest.fixture
def libraries(bucket) -> list[str]:
    make_library(LIB)
    make_library(OTHER, title="Handouts")
    return [LIB, OTHER]


@pytest.fixture
def lib_author(django_user_model):
    """An author of LIB only (the group ``library_authors:<key>``)."""
    user = django_user_model.objects.create_user("lib-author", "la@example.com", "pw")
    group, _ = Group.objects.get_or_create(name=author_group_name(LibraryLocatorV2.from_string(LIB)))
    user.groups.add(group)
    return user


def stage(name: str, data: bytes) -> str:
    """Put an object into the bucket (as an upload or a backup is); its name."""
    with storage.open_writer(name, "application/zip") as out:
        out.write(data)
    return name


def restore(user, target: str, object_name: str, **options):
    return library_restores.restore_one(f"t-{target}", target, object_name, user, options, existed=True)


# Backups ----------------------------------------------------------------------------------------


def test_a_library_is_backed_up_then_unchanged_then_exported_again_when_a_component_changes(
    libraries, staff, tmp_path
):
    _process, first = run(staff, [LIB])
    (entry,) = first["courses"]
    assert entry["status"] == "exported" and entry["course_id"] == LIB
    assert entry["key"].startswith(f"backups/{LIB}/") and entry["key"].endswith(".zip")
    with storage.get_storage().open(entry["key"], "rb") as stream:
        data = stream.read()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert comparable(data) == comparable(dump_bytes(LIB, tmp_path))  # Learning Core's own zip

    _process, second = run(staff, [LIB])
    assert second["courses"][0]["status"] == "unchanged"

    change_component(LIB, "quiz", b'<problem display_name="Quiz"><p>3+3?</p></problem>')
    _process, third = run(staff, [LIB])
    assert third["courses"][0]["status"] == "exported" and third["courses"][0]["key"] != entry["key"]


def test_the_fingerprint_moves_with_drafts_and_after_a_load_with_the_same_version_numbers(
    libraries, staff, tmp_path
):
    backend = get_library_backend()
    key = LibraryLocatorV2.from_string(LIB)
    before = backend.fingerprint(key)
    assert backend.fingerprint(key) == before
    change_component(
        LIB, "intro", b'<html display_name="Intro"><![CDATA[<p>Draft</p>]]></html>', publish=False
    )
    drafted = backend.fingerprint(key)
    assert drafted != before

    # LIB's own dump with one block's content edited, loaded over LIB: the same title, times and
    # version numbers come back, with other content. The load writes new version rows.
    members = members_of(dump_bytes(LIB, tmp_path))
    block = next(name for name in sorted(members) if "/quiz/" in name and name.endswith("block.xml"))
    members[block] = b'<problem display_name="Quiz"><p>Edited inside the backup.</p></problem>'
    name = stage(f"backups/{LIB}/20261123T193000Z.zip", zip_of(members))
    assert restore(staff, LIB, name, overwrite=True).outcome == restores.RESTORED
    reloaded = backend.fingerprint(key)
    assert reloaded not in (before, drafted)
    assert members_of(dump_bytes(LIB, tmp_path))[block] == members[block]


def test_retention_keeps_library_versions_like_a_course(libraries, staff, settings):
    settings.EXPORTBULK_BACKUP_KEEP = 1
    _p, first = run(staff, [LIB])
    change_component(LIB, "quiz", b'<problem display_name="Quiz"><p>4?</p></problem>')
    _p, second = run(staff, [LIB])
    assert [d["key"] for d in second["deleted"]] == [first["courses"][0]["key"]]
    assert not storage.get_storage().exists(first["courses"][0]["key"])


# Selection and permissions -----------------------------------------------------------------------


def test_all_and_org_select_the_libraries_the_caller_may_author(libraries, sample_course, staff, lib_author):
    everything = contexts.authorable(staff)
    assert LIB in everything and OTHER in everything and everything[0].startswith("course-v1:")
    assert contexts.authorable(staff, "orgb") == [OTHER]
    assert contexts.authorable(lib_author) == [LIB]


def test_an_author_of_one_library_cannot_back_up_read_or_restore_another(
    libraries, lib_author, staff, client_for
):
    process_id = backups.start_backup(lib_author, [LIB, OTHER], send=False)
    from plugin_app.models import BulkItem

    items = {i.course_id: i for i in BulkItem.objects.filter(process__process_id=process_id)}
    assert items[LIB].status == ItemStatus.PENDING
    assert (items[OTHER].status, items[OTHER].error) == (
        ItemStatus.FAILED,
        contexts.LIBRARY_PERMISSION_DENIED,
    )

    # Read: the other library's versions, and its backup as a restore source.
    _p, manifest = run(staff, [OTHER])
    other_backup = manifest["courses"][0]["key"]
    answer = client_for(lib_author).get(f"/api/courses/v0/backup/versions/{OTHER}")
    assert (
        answer.status_code == 403 and answer.json()["developer_message"] == contexts.LIBRARY_PERMISSION_DENIED
    )
    assert client_for(lib_author).get(f"/api/courses/v0/backup/versions/{LIB}").status_code == 200
    planned = library_restores.plan_one(lib_author, LIB, other_backup, {})
    assert planned.error == "Permission denied: you may not read the source library's backups."

    # Restore into it, whatever the source.
    refused = library_restores.plan_one(lib_author, OTHER, "backup:latest", {})
    assert refused.error == library_restores.PERMISSION_DENIED
    assert library_restores.plan_one(lib_author, "lib:OrgC:new", "backup:latest", {}).error == (
        library_restores.PERMISSION_DENIED  # standalone: only staff create libraries
    )


# Restores -----------------------------------------------------------------------------------------


def test_restore_into_a_new_key_makes_an_equal_library(libraries, staff, tmp_path):
    name = stage(f"backups/{LIB}/20261123T193000Z.zip", dump_bytes(LIB, tmp_path))
    planned = library_restores.plan_one(staff, "lib:OrgA:copy", name, {})
    assert (planned.error, planned.object_name, planned.existed) == ("", name, False)

    done = restore(staff, "lib:OrgA:copy", name)

    assert (done.outcome, done.error) == (restores.RESTORED, "")
    assert comparable(dump_bytes("lib:OrgA:copy", tmp_path)) == comparable(dump_bytes(LIB, tmp_path))
    assert not learning_core.package_refs(learning_core.STAGING_PREFIX)


def test_overwrite_after_a_dry_run_that_changed_nothing(libraries, staff, tmp_path):
    backend, key = get_library_backend(), LibraryLocatorV2.from_string(OTHER)
    name = stage(f"backups/{LIB}/20261123T193000Z.zip", dump_bytes(LIB, tmp_path))
    before, packages = backend.fingerprint(key), learning_core.package_refs("")
    refs = [ref for ref, _title in packages]

    refused = restore(staff, OTHER, name)
    assert (refused.outcome, refused.error) == (
        restores.FAILED,
        "The library exists: set overwrite to replace it.",
    )
    dry = restore(staff, OTHER, name, overwrite=True, dry_run=True)
    assert dry.outcome == restores.WOULD_RESTORE
    assert backend.fingerprint(key) == before and learning_core.package_refs("") == packages

    done = restore(staff, OTHER, name, overwrite=True)

    assert done.outcome == restores.RESTORED
    assert comparable(dump_bytes(OTHER, tmp_path)) == comparable(dump_bytes(LIB, tmp_path))
    # The old package is gone, nothing staged is left.
    assert [ref for ref, _title in learning_core.package_refs("")] == refs


def test_a_failed_swap_leaves_the_old_library_whole(libraries, staff, tmp_path, monkeypatch):
    key = LibraryLocatorV2.from_string(OTHER)
    original = comparable(dump_bytes(OTHER, tmp_path))
    name = stage(f"backups/{LIB}/20261123T193000Z.zip", dump_bytes(LIB, tmp_path))

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away mid-swap")

    monkeypatch.setattr(learning_core, "rename", broken)
    with pytest.raises(RuntimeError):
        restore(staff, OTHER, name, overwrite=True)

    assert comparable(dump_bytes(OTHER, tmp_path)) == original
    assert get_library_backend().exists(key) and not learning_core.package_refs(learning_core.STAGING_PREFIX)


def test_a_restore_item_naming_a_library_runs_through_the_restore_kind(libraries, olx_root, staff, tmp_path):
    """The restore kind dispatches a ``lib:`` target to the library restore (registered at ready)."""
    name = stage(f"backups/{LIB}/20261123T193000Z.zip", dump_bytes(LIB, tmp_path))
    new, own = restores.plan(staff, [("lib:OrgA:viakind", name), (LIB, "backup:latest")], {})
    assert (new.error, new.object_name, own.error, own.object_name) == ("", name, "", name)
    (course,) = restores.plan(staff, [("course-v1:OrgA+X+1", name)], {})
    assert course.error.startswith("Invalid source")  # a library's zip never restores a course


def test_the_api_and_the_command_back_up_libraries_beside_courses(
    libraries, sample_course, staff, client_for, items_in_this_thread, settings
):
    answer = client_for(staff).post("/api/courses/v0/backup/", {"org": "OrgB"}, format="json")
    status = client_for(staff).get(f"/api/courses/v0/backup/status/{answer.json()['processId']}")
    (item,) = status.json()["result"]["items"]
    assert (item["course_id"], item["status"]) == (OTHER, "exported")
    assert set(item) == {"course_id", "status", "key", "size", "sha256", "url"}  # a course's fields
    versions = client_for(staff).get(f"/api/courses/v0/backup/versions/{OTHER}").json()["versions"]
    assert [v["key"] for v in versions] == [item["key"]]

    settings.EXPORTBULK_SERVICE_USERNAME = "staff"
    out = io.StringIO()
    call_command("exportbulk_backup", "--all", stdout=out)
    assert f"unchanged  {OTHER}  {item['key']}" in out.getvalue()
    assert "Completed: 2 exported, 1 unchanged, 0 failed" in out.getvalue()  # the course and LIB


def test_a_librarys_versions_are_read_back_from_the_bucket_when_the_database_forgot_them(
    libraries, staff, client_for
):
    from plugin_app.models import BackupVersion

    _p, manifest = run(staff, [LIB])
    BackupVersion.objects.all().delete()  # a fresh database: the bucket is the source of truth
    answer = client_for(staff).get(f"/api/courses/v0/backup/versions/{LIB}").json()
    assert [v["key"] for v in answer["versions"]] == [manifest["courses"][0]["key"]]
    assert answer["versions"][0]["sha256"] == manifest["courses"][0]["sha256"]


def test_a_queued_library_backup_stores_nothing_once_its_author_lost_access(lib_author, libraries, held_back):
    from plugin_app import access, runners
    from plugin_app.models import BulkItem

    process_id = backups.start_backup(lib_author, [LIB])
    (item,) = BulkItem.objects.filter(process__process_id=process_id)
    assert item.status == ItemStatus.PENDING  # accepted: the author could edit the library then
    lib_author.groups.clear()

    runners.work_on_item(item.id)

    item.refresh_from_db()
    assert (item.status, item.error) == (ItemStatus.FAILED, access.PERMISSION_WITHDRAWN)
    assert not [key for key in storage.get_storage().listdir(f"backups/{LIB}")[1]]
