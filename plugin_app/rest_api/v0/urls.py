"""URLs of the app, mounted by the CMS under ``api/courses/v0/``."""

from django.urls import path

from plugin_app.rest_api.v0 import views

app_name = "exportbulk"

urlpatterns = [
    path("export/", views.ExportView.as_view(), name="export"),
    path("export/status/list", views.ExportStatusListView.as_view(), name="export-status-list"),
    path("export/status/<str:process_id>", views.ExportStatusView.as_view(), name="export-status"),
    path("content/bulk/upload", views.BulkUploadView.as_view(), name="upload"),
    path("content/bulk/upload/status/list", views.UploadStatusListView.as_view(), name="upload-status-list"),
    path(
        "content/bulk/upload/status/<str:process_id>", views.UploadStatusView.as_view(), name="upload-status"
    ),
    path("processes/<str:process_id>", views.ProcessStatusView.as_view(), name="process-status"),
    path("exportbulk/files/<str:token>", views.FileDownloadView.as_view(), name="download"),
]
