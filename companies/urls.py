from __future__ import annotations

from django.urls import path

from . import views

app_name = "companies"

urlpatterns = [
    path("", views.home, name="home"),
    path("companies/<uuid:code>/switch/", views.switch_company, name="switch"),
]
