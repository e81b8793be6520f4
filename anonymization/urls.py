from __future__ import annotations

from django.urls import path

from . import views

app_name = "anonymization"

urlpatterns = [
    path("anonymization/", views.run_list, name="list"),
    path("anonymization/<uuid:code>/", views.run_detail, name="detail"),
    path("anonymization/<uuid:code>/files/<uuid:file_code>/", views.file_detail, name="file"),
    path("anonymization/<uuid:code>/files/<uuid:file_code>/download/", views.file_download, name="file-download"),
    path("anonymization/<uuid:code>/zip/", views.archive_prepare, name="archive-prepare"),
    path("anonymization/<uuid:code>/zip/download/", views.archive_download, name="archive-download"),
]
