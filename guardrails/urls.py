from __future__ import annotations

from django.urls import path

from . import views

app_name = "guardrails"

urlpatterns = [
    path("guardrails/", views.guardrail_list, name="list"),
    path("guardrails/<str:eval_id>/", views.guardrail_detail, name="detail"),
]
