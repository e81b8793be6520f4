from __future__ import annotations

from django.urls import path

from . import views

app_name = "runs"

urlpatterns = [
    path("specs/", views.spec_list, name="spec-list"),
    path("specs/generate/", views.spec_generate, name="spec-generate"),
    path("specs/<uuid:code>/", views.spec_detail, name="spec-detail"),
    path("specs/<uuid:code>/status/", views.spec_status, name="spec-status"),
    path("seed-datasets/", views.seed_dataset_list, name="seed-dataset-list"),
    path("seed-datasets/<uuid:code>/", views.seed_dataset_detail, name="seed-dataset-detail"),
    path("seed-datasets/<uuid:code>/delete/", views.seed_dataset_delete_view, name="seed-dataset-delete"),
    path("specs/<uuid:code>/generate/", views.run_generate_form, name="generate"),
    path("runs/", views.run_list, name="list"),
    path("runs/import/", views.run_import_upload, name="import"),
    path("runs/<uuid:code>/", views.run_detail, name="detail"),
    path("runs/<uuid:code>/cancel/", views.run_cancel_view, name="cancel"),
]
