from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def chart(figure: dict[str, Any], *id_parts: object) -> SafeString:
    """A drawing target plus its figure as escaped JSON; static/js/charts.js draws every such pair."""
    target_id = "-".join(str(part) for part in ("chart", *id_parts))
    script = json_script(figure).replace("<script ", f'<script data-chart="{target_id}" ', 1)
    return SafeString(f'<div class="chart" id="{target_id}" role="img" aria-label="chart"></div>{script}')
