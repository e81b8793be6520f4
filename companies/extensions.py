"""The home page's dashboard sections, contributed by the apps built on companies (evaluations, guardrails) so that
companies never imports them: the same inversion as runs/extensions.py.

A list rather than runs' single-provider slots, because two apps each add a section; they appear in INSTALLED_APPS
order (each app appends in its `AppConfig.ready()`). Simpler than routing `/` to a view in evaluations, which could
not show guardrails either (evaluations must not import guardrails).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.utils.safestring import SafeString

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import Membership

# Each returns the HTML of one dashboard card for the membership's company.
HomeSection = Callable[["HttpRequest", "Membership"], SafeString]

home_sections: list[HomeSection] = []
