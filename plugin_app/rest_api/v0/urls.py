"""URLs of the app, mounted by the CMS under ``api/courses/v0/``."""

from django.urls import path

from plugin_app.rest_api.v0 import backups, exports, restores, uploads, views

app_name = "exportbulk"

urlpatterns = [
    path("export/", exports.ExportView.as_view(), name="export"),
    # The export anchor's: versions/ ahead of <course_id>/, which would take it.
    path("export/versions/", exports.ContentVersionsView.as_view(), name="export-versions"),
    path("export/<str:course_id>/", exports.ExportTaskView.as_view(), name="export-task"),
    path("export/status/list", exports.ExportStatusListView.as_view(), name="export-status-list"),
    path("export/status/<str:process_id>", exports.ExportStatusView.as_view(), name="export-status"),
    path("export/status/<str:process_id>/cancel", exports.ExportCancelView.as_view(), name="export-cancel"),
    path("content/bulk/upload", uploads.BulkUploadView.as_view(), name="upload"),
    path(
        "content/bulk/upload/status/list", uploads.UploadStatusListView.as_view(), name="upload-status-list"
    ),
    path(
        "content/bulk/upload/status/<str:process_id>",
        uploads.UploadStatusView.as_view(),
        name="upload-status",
    ),
    path(
        "content/bulk/upload/status/<str:process_id>/cancel",
        uploads.UploadCancelView.as_view(),
        name="upload-cancel",
    ),
    path("processes/<str:process_id>", views.ProcessStatusView.as_view(), name="process-status"),
    path("storage/check", views.StorageCheckView.as_view(), name="storage-check"),
    path("backup/", backups.BackupView.as_view(), name="backup"),
    path("backup/status/list", backups.BackupStatusListView.as_view(), name="backup-status-list"),
    path("backup/status/<str:process_id>", backups.BackupStatusView.as_view(), name="backup-status"),
    path("backup/status/<str:process_id>/cancel", backups.BackupCancelView.as_view(), name="backup-cancel"),
    path("backup/versions/<str:course_id>", backups.BackupVersionsView.as_view(), name="backup-versions"),
    path("restore/", restores.RestoreView.as_view(), name="restore"),
    path("restore/status/list", restores.RestoreStatusListView.as_view(), name="restore-status-list"),
    path("restore/status/<str:process_id>", restores.RestoreStatusView.as_view(), name="restore-status"),
    path(
        "restore/status/<str:process_id>/cancel", restores.RestoreCancelView.as_view(), name="restore-cancel"
    ),
    path("exportbulk/files/<str:token>", views.FileDownloadView.as_view(), name="download"),
]
