"""Operators read processes in the Django admin; they cannot forge or edit them there."""

from __future__ import annotations

import pytest

from plugin_app import api

pytestmark = pytest.mark.django_db


def test_admin_lists_processes_with_their_items(client, django_user_model, olx_root, local_storage):
    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    process_id = api.create_export(admin_user, ["course-v1:ExportBulk+Sample+2026", "bad-key"])
    client.force_login(admin_user)

    listing = client.get("/admin/exportbulk/bulkprocess/")
    assert listing.status_code == 200
    assert process_id in listing.content.decode().replace("-", "")

    from plugin_app.models import BulkProcess

    detail = client.get(f"/admin/exportbulk/bulkprocess/{BulkProcess.objects.get().pk}/change/")
    assert detail.status_code == 200
    assert "Invalid course key." in detail.content.decode()
    assert client.get("/admin/exportbulk/bulkprocess/add/").status_code == 403


def test_admin_shows_each_courses_last_backup_and_a_failure_since(
    client, django_user_model, olx_root, bucket
):
    from plugin_app import backups
    from plugin_app.models import BackupCourse

    admin_user = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    course_id = "course-v1:ExportBulk+Sample+2026"
    outcome = backups.backup_course(course_id, "a" * 32, "run-1")
    client.force_login(admin_user)
    page = client.get("/admin/exportbulk/backupcourse/").content.decode()
    assert course_id in page
    assert "icon-no.svg" in page and "icon-yes.svg" not in page  # no failure since
    assert "KB" in page or "bytes" in page  # its size

    (olx_root / "sample" / "course.xml").unlink()  # the course is gone: the next backup fails
    backups.backup_course(course_id, "b" * 32, "run-2")
    page = client.get("/admin/exportbulk/backupcourse/").content.decode()
    assert "icon-yes.svg" in page  # failed since its last backup
    detail = client.get(
        f"/admin/exportbulk/backupcourse/{BackupCourse.objects.get().pk}/change/"
    ).content.decode()
    assert outcome.result["key"] in detail and "Course not found." in detail
