from __future__ import annotations

from django.urls import path

from . import monitor_views, views

app_name = "guardrails"

urlpatterns = [
    path("guardrails/", views.guardrail_list, name="list"),
    path("guardrails/<str:eval_id>/", views.guardrail_detail, name="detail"),
    path("monitors/", monitor_views.monitor_list, name="monitor-list"),
    path("monitors/<uuid:code>/", monitor_views.monitor_detail, name="monitor-detail"),
    path("workflows/", monitor_views.workflow_list, name="workflow-list"),
    path("workflows/<uuid:code>/", monitor_views.workflow_detail, name="workflow-detail"),
    path("workflows/<uuid:code>/events/<uuid:event_code>/", monitor_views.workflow_event_detail, name="workflow-event"),
]
