"""
Hostile library backups: each is refused before anything is written, with its reason; an item
reports every problem together. Learning Core runs for real on the test database.
"""

from __future__ import annotations

import pytest

from plugin_app import library_restores, restores
from plugin_app.backends import learning_core
from tests.libraries import dump_bytes, make_library, members_of, zip_of
from tests.test_libraries import LIB, stage

pytestmark = pytest.mark.django_db
TARGET = "lib:OrgA:restored"


@pytest.fixture
def good(bucket, tmp_path) -> dict[str, bytes]:
    """The members of a real library backup."""
    make_library(LIB)
    return members_of(dump_bytes(LIB, tmp_path))


def refused(user, archive: bytes, target: str = TARGET, token: str = "t-hostile") -> str:
    """Restore the archive into ``target``; assert it failed and wrote nothing; its reason."""
    packages = learning_core.package_refs("")
    name = stage(f"restores/{token}/0.zip", archive)
    done = library_restores.restore_one(token, target, name, user, {"overwrite": True}, existed=False)
    assert done.outcome == restores.FAILED
    assert learning_core.package_refs("") == packages
    return done.error


def test_the_good_archive_restores(good, staff):
    name = stage("restores/ok/0.zip", zip_of(good))
    done = library_restores.restore_one("ok", TARGET, name, staff, {}, existed=False)
    assert (done.outcome, done.error) == (restores.RESTORED, "")


def test_zip_slip_is_refused(good, staff):
    assert "ZIP entry '../escape.toml' contains '..'." in refused(
        staff, zip_of({**good, "../escape.toml": b""})
    )


def test_a_symbolic_link_is_refused(good, staff):
    archive = zip_of({**good, "entities/link": b"/etc/passwd"}, symlinks=("entities/link",))
    assert "ZIP entry 'entities/link' is a symbolic link." in refused(staff, archive)


def test_a_zip_bomb_is_refused(good, staff, settings):
    reason = refused(staff, zip_of({**good, "entities/zeros.bin": bytes(8 * 1024 * 1024)}))
    limit = settings.EXPORTBULK_RESTORE_MAX_COMPRESSION_RATIO
    assert f"ZIP entry 'entities/zeros.bin' is compressed more than {limit}:1 (a ZIP bomb?)." in reason


def test_too_many_members_are_refused(good, staff, settings):
    settings.EXPORTBULK_RESTORE_MAX_MEMBERS = 5
    assert refused(staff, zip_of(good)) == "The ZIP has more than 5 entries (the limit)."


def test_an_archive_without_package_toml_is_refused(good, staff):
    members = {name: data for name, data in good.items() if name != "package.toml"}
    reason = refused(staff, zip_of(members))
    assert "package.toml is missing: this is not a Learning Core library backup." in reason


def test_a_toml_that_does_not_parse_is_refused_and_every_problem_is_reported(good, staff):
    entity = next(name for name in good if name.startswith("entities/") and name.endswith(".toml"))
    members = {**good, entity: b"[entity\nkey = ", "package.toml": good["package.toml"].replace(
        b"format_version = 1", b"format_version = 7")}  # fmt: skip
    reason = refused(staff, zip_of(members))
    assert f"{entity} is not valid TOML" in reason
    assert "package.toml has format_version 7; this app loads 1." in reason


def test_xml_with_entities_is_refused(good, staff):
    block = next(name for name in good if name.endswith("block.xml"))
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><html>&b;</html>'
    assert f"{block} is refused: " in refused(staff, zip_of({**good, block: bomb}))


def test_an_archive_claiming_a_staging_key_is_refused(good, staff):
    claimed = good["package.toml"].replace(f'key = "{LIB}"'.encode(), b'key = "exportbulk-staged:t-hostile"')
    reason = refused(staff, zip_of({**good, "package.toml": claimed}))
    assert "package.toml names 'exportbulk-staged:t-hostile', not a library key (lib:Org:slug)." in reason


def test_a_staging_key_taken_by_another_package_is_refused_and_left_alone(good, staff):
    planted = make_library(learning_core.staging_ref("t-hostile"), title="Not ours")
    before = learning_core.fingerprint(planted)
    reason = refused(staff, zip_of(good))
    assert reason == "The staging key 'exportbulk-staged:t-hostile' is taken by another learning package."
    assert learning_core.fingerprint(planted) == before


def test_a_target_in_the_staging_namespace_is_refused_at_request_time(staff):
    planned = library_restores.plan_one(staff, learning_core.staging_ref("x"), "backup:latest", {})
    assert planned.error  # not a library key: never a restore target
    (item,) = restores.plan(staff, [(learning_core.staging_ref("x"), "backup:latest")], {})
    assert item.error.startswith("Invalid course key")


def test_not_a_zip_is_refused(staff, bucket):
    reason = refused(staff, b"this is not a zip at all")
    assert reason == "The source is not a ZIP file (a library backup is Learning Core's .zip)."
