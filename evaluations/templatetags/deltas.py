"""One way to show a change against a baseline: signed, two decimals, in percentage points (or points, for a score),
green when better and red when worse, with a mark when the change of a share is beyond noise (evaluations/gate.py)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def delta(
    value: float | None,
    better: str = "up",
    unit: str = "pp",
    interval: list[float] | None = None,
    significant: bool = False,
) -> SafeString:
    """`better` is "up" when a rise is good (score, agreement), "down" when a fall is (TVD), anything else when
    neither is (an evaluated share: moving is news, not better or worse)."""
    if value is None:
        return SafeString('<span class="delta">—</span>')
    if value == 0 or better not in ("up", "down"):
        tone = "same"
    else:
        tone = "good" if (value > 0) == (better == "up") else "bad"
    text = f"{value:+.2f} {unit}".replace("-", "−")  # a true minus, as wide as the plus
    if not significant:
        return format_html('<span class="delta {}">{}</span>', tone, text)
    low, high = interval or (None, None)
    title = f"Beyond noise: 95% interval {low:+.2f} to {high:+.2f} pp (Newcombe)" if low is not None else "Beyond noise"
    return format_html('<span class="delta {}">{}<sup class="significant" title="{}">*</sup></span>', tone, text, title)
