"""Plotly figure pieces shared by every app's pages: figures are plain data/layout dicts built in Python."""

from __future__ import annotations

from typing import Any

COLORS = {"requested": "#9aa5c4", "expected": "#3451b2", "evaluated": "#e07a1f", "corrected": "#7b3fa0"}


def grouped_bar_chart(*, title: str, values: list[str], series: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A Plotly figure (plain data/layout dicts) comparing percentage distributions side by side."""
    data = [
        {
            "type": "bar",
            "name": label.capitalize(),
            "x": values,
            "y": [dist.get(v, 0) for v in values],
            "marker": {"color": COLORS.get(label, "#777")},
            "hovertemplate": "%{x}: %{y:.1f}%<extra>" + label + "</extra>",
        }
        for label, dist in series.items()
    ]
    layout = {
        "title": {"text": title, "font": {"size": 15}},
        "barmode": "group",
        "yaxis": {"title": {"text": "% of samples"}, "rangemode": "tozero"},
        "height": 320,
        "margin": {"l": 55, "r": 15, "t": 45, "b": 45},
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout}
