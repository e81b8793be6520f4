from __future__ import annotations

from django.urls import path

from . import views

app_name = "redteam"

urlpatterns = [
    path("red-team/", views.red_team_list, name="list"),
    path("red-team/specs/<uuid:code>/", views.red_team_spec_detail, name="spec-detail"),
    path("red-team/runs/<uuid:code>/", views.red_team_run_detail, name="run-detail"),
    path("red-team/runs/<uuid:code>/cancel/", views.red_team_run_cancel_view, name="run-cancel"),
]
