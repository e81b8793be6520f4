"""The admin app with our site class (Django's documented way to replace `admin.site`)."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class ThrottledAdminConfig(AdminConfig):
    default_site = "config.admin_site.ThrottledAdminSite"
