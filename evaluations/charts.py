"""The evaluation page's Plotly figures: per property the requested/expected/evaluated(/corrected) bars and the
confusion heatmap, built from the stored analysis (no query)."""

from __future__ import annotations

from typing import Any

from config.charts import COLORS, grouped_bar_chart

from .analysis import NOT_JUDGED
from .models import Evaluation, SampleClassification


def error_bars(shares: dict[str, float], intervals: dict[str, Any], values: list[str], color: str) -> dict[str, Any]:
    """Plotly's asymmetric error bars for percentages and their [low, high] intervals."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [max(0.0, intervals[v][1] - shares[v]) for v in values],
        "arrayminus": [max(0.0, shares[v] - intervals[v][0]) for v in values],
        "color": color,
    }


def property_views(*, evaluation: Evaluation, human: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per property: the requested/expected/evaluated chart (Wilson error bars) with a fourth series, "corrected"
    (with its 95% intervals), once `human` (human_review_blocks) has estimates; the confusion heatmap; the numbers.

    Built from the evaluation's stored analysis and the blocks given: no query beyond the evaluation row.
    """
    human = human or {}
    if not evaluation.distribution_analysis or not evaluation.statistics:
        return []
    stats_by_name = {p["property_name"]: p for p in evaluation.statistics["properties"]}
    views = []
    for analysis in evaluation.distribution_analysis:
        name = analysis["property_name"]
        stats = stats_by_name[name]
        values = stats["values"]
        chart = grouped_bar_chart(
            title=name,
            values=values,
            series={
                "requested": analysis["requested_distributions"],
                "expected": analysis["expected_distributions"],
                "evaluated": analysis["evaluated_distributions"],
            },
        )
        evaluated = analysis["evaluated_distributions"]
        chart["data"][2]["error_y"] = error_bars(evaluated, stats["wilson_intervals"], values, COLORS["evaluated"])
        block = human.get(name)
        if block and block["corrected_distributions"] is not None:
            corrected = corrected_series(block, values)
            chart["data"].append(corrected)
        views.append(
            {
                "name": name,
                "analysis": analysis,
                "stats": stats,
                "chart": chart,
                "heatmap": heatmap(stats),
                "human": block,
                # (value, share, low, high) of the corrected distribution, for the human-review table's line
                "corrected": [
                    (v, block["corrected_distributions"][v], *block["corrected_ci"][v])
                    for v in block["corrected_distributions"]
                ]
                if block and block["corrected_distributions"] is not None
                else [],
            }
        )
    return views


def corrected_series(block: dict[str, Any], values: list[str], name: str = "Corrected") -> dict[str, Any]:
    """The "corrected" bar series of a human_review block, with its 95% intervals as error bars."""
    shares = block["corrected_distributions"]
    series = grouped_bar_chart(title="", values=values, series={"corrected": shares})["data"][0]
    series["name"] = name
    series["error_y"] = error_bars(shares, block["corrected_ci"], values, COLORS["corrected"])
    return series  # type: ignore[no-any-return]


def heatmap(stats: dict[str, Any]) -> dict[str, Any]:
    """Assigned (rows) against judged (columns), with a column for the samples left undecided and, when some
    failed, one for those (statistics stored before issue #20 have neither)."""
    values = stats["values"]
    columns, matrix = list(values), [list(row) for row in stats["confusion_matrix"]]
    not_judged = stats.get("confusion_not_judged")
    if not_judged is not None:
        for j, stratum in enumerate(NOT_JUDGED):
            if stratum == SampleClassification.UNDECIDED or any(row[j] for row in not_judged):
                columns.append(stratum)
                for row, extra in zip(matrix, not_judged, strict=True):
                    row.append(extra[j])
    return {
        "data": [
            {
                "type": "heatmap",
                "z": matrix,
                "x": columns,
                "y": values,
                "colorscale": "Blues",
                "showscale": False,
                "reversescale": True,
                "texttemplate": "%{z}",
                "hovertemplate": "assigned %{y}, judged %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": f"{stats['property_name']}: assigned vs judged", "font": {"size": 14}},
            "xaxis": {"title": {"text": "judged"}},
            "yaxis": {"title": {"text": "assigned"}, "autorange": "reversed"},
            "height": 300,
            "margin": {"l": 80, "r": 10, "t": 40, "b": 50},
            "paper_bgcolor": "rgba(0,0,0,0)",
        },
    }
