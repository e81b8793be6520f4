from __future__ import annotations

from django.urls import path

from . import views

app_name = "runs"

urlpatterns = [
    path("specs/", views.spec_list, name="spec-list"),
    path("specs/<uuid:code>/", views.spec_detail, name="spec-detail"),
    path("specs/<uuid:code>/generate/", views.run_generate_form, name="generate"),
    path("runs/", views.run_list, name="list"),
    path("runs/import/", views.run_import_upload, name="import"),
    path("runs/<uuid:code>/", views.run_detail, name="detail"),
    path("runs/<uuid:code>/cancel/", views.run_cancel_view, name="cancel"),
]
