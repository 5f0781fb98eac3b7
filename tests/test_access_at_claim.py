"""
Access is checked again when the work starts, not only when it is requested: an author removed
from a course while a restore, an export or a bulk upload of it waits (or runs) writes nothing
more into it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io

import pytest
from django.contrib.auth.models import Group
from opaque_keys.edx.keys import CourseKey

from plugin_app import access, kinds, restores, runners, storage
from plugin_app.backends.olx_directory import author_group_name
from plugin_app.data import ItemStatus, ProcessKind, UploadMode
from plugin_app.export import export_course
from plugin_app.exports import create_export
from plugin_app.models import BulkItem
from plugin_app.uploads import create_upload
from tests.builders import SAMPLE_COURSE_ID, content_zip, manifest
from tests.test_restore import tree_digest

pytestmark = pytest.mark.django_db
SAMPLE_KEY = CourseKey.from_string(SAMPLE_COURSE_ID)


def remove_from_course(user) -> None:
    user.groups.remove(Group.objects.get(name=author_group_name(SAMPLE_KEY)))


def test_a_queued_restore_with_overwrite_writes_nothing_once_its_author_lost_access(
    author, olx_root, bucket, held_back
):
    source = export_course(SAMPLE_KEY)
    process_id = restores.create_restore(author, [(SAMPLE_COURSE_ID, source)], [], {"overwrite": True})
    item = BulkItem.objects.get(process__process_id=process_id)
    assert item.status == ItemStatus.PENDING  # accepted: the author could write the course then
    (olx_root / "sample" / "static" / "added.txt").write_text("after the request")
    before = tree_digest(olx_root)
    remove_from_course(author)

    runners.work_on_item(item.id)

    item.refresh_from_db()
    assert (item.status, item.error) == (ItemStatus.FAILED, restores.PERMISSION_WITHDRAWN)
    assert tree_digest(olx_root) == before


def test_a_queued_export_stores_nothing_once_its_author_lost_access(author, olx_root, bucket, held_back):
    process_id = create_export(author, [SAMPLE_COURSE_ID])
    item = BulkItem.objects.get(process__process_id=process_id)
    remove_from_course(author)

    runners.work_on_item(item.id)

    item.refresh_from_db()
    assert (item.status, item.error) == (ItemStatus.FAILED, access.PERMISSION_WITHDRAWN)
    assert not storage.get_storage().exists(storage.export_name(SAMPLE_COURSE_ID))


def test_upload_rows_after_the_author_lost_access_write_nothing(
    author, sample_course, local_storage, held_back, monkeypatch
):
    monkeypatch.setattr(runners, "BATCH_ITEMS", 2)
    spec = kinds.KINDS[ProcessKind.UPLOAD]

    @contextlib.contextmanager
    def batch_then_removal(process, course_id):
        with spec.batch(process, course_id):
            yield
        remove_from_course(author)  # between the first batch and the second

    monkeypatch.setitem(kinds.KINDS, ProcessKind.UPLOAD, dataclasses.replace(spec, batch=batch_then_removal))
    files = {f"f{i}.txt": f"file {i}".encode() for i in range(4)}
    rows = [{"course_id": SAMPLE_COURSE_ID, "file": name, "type": "asset"} for name in files]
    process_id = create_upload(author, manifest(rows), io.BytesIO(content_zip(files)), UploadMode.PUBLISH)

    runners.run_sequential(process_id, time_slice=None)

    items = list(BulkItem.objects.filter(process__process_id=process_id).order_by("position"))
    assert [(i.status, i.error) for i in items] == [(ItemStatus.SUCCESS, "")] * 2 + [
        (ItemStatus.FAILED, access.PERMISSION_WITHDRAWN)
    ] * 2
    assert sorted(p.name for p in (sample_course / "static").glob("f*.txt")) == ["f0.txt", "f1.txt"]
