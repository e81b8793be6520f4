from __future__ import annotations

from django.urls import path

from . import views

app_name = "companies"

urlpatterns = [
    path("", views.home, name="home"),
    path("companies/<uuid:code>/switch/", views.switch_company, name="switch"),
    path("api-keys/", views.api_keys, name="api-keys"),
    path("api-keys/<uuid:code>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("usage/", views.usage_active, name="usage-active"),
    path("companies/<uuid:code>/usage/", views.usage, name="usage"),
]
