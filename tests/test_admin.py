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
