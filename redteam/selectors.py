"""What the API and pages show of a red-team run: the vendor's results_json, progress, attack success rates per
behaviour (with Wilson intervals) and their chart, and the answers worst first."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from . import scoring
from .models import RedTeamPrompt, RedTeamRun


def results_json(run: RedTeamRun, prompts: list[RedTeamPrompt] | None = None) -> dict[str, Any] | None:
    """`{behavior_to_enhanced_queries: {behaviour: [{query, adversarial_prompt}]}}`; null while the run is active
    (the contract) and for a run that ended before writing a prompt."""
    if not run.is_terminal:
        return None
    rows = prompts if prompts is not None else list(run.prompts.order_by("behavior_index", "position"))
    if not rows:
        return None
    mapping: dict[str, list[dict[str, str]]] = {}
    for prompt in rows:
        if prompt.behavior_index < len(run.behaviors):
            behavior = run.behaviors[prompt.behavior_index]
            mapping.setdefault(behavior, []).append(
                {"query": prompt.query, "adversarial_prompt": prompt.adversarial_prompt}
            )
    return {"behavior_to_enhanced_queries": mapping}


def progress(run: RedTeamRun, prompts: list[RedTeamPrompt] | None = None) -> dict[str, int]:
    """Steps done of steps to do: the behaviour list, each behaviour's prompts, each attack (with a target).
    Counted from `prompts` when the caller has them loaded, else in one query."""
    if prompts is None:
        counts = run.prompts.aggregate(
            behaviors_written=Count("behavior_index", distinct=True), attacked=Count("id", filter=Q(attacked=True))
        )
    else:
        counts = {
            "behaviors_written": len({p.behavior_index for p in prompts}),
            "attacked": sum(1 for p in prompts if p.attacked),
        }
    done = (1 if run.behaviors else 0) + (counts["behaviors_written"] or 0)
    if run.target_model:
        done += counts["attacked"] or 0
    return {"done": done, "total": run.steps_total()}


def attack_summary(run: RedTeamRun, prompts: list[RedTeamPrompt] | None = None) -> dict[str, Any] | None:
    """Success rate per behaviour and overall, each with its Wilson 95% interval; None without a target."""
    if not run.target_model:
        return None
    if prompts is None:
        outcomes: Any = run.prompts.values_list("behavior_index", "succeeded")
    else:
        outcomes = [(p.behavior_index, p.succeeded) for p in prompts]
    rates = scoring.success_rates(list(run.behaviors), outcomes)
    return {
        "threshold": scoring.ATTACK_THRESHOLD,
        "metrics": list(scoring.METRICS),
        "overall": scoring.overall(rates),
        "behaviors": [rate.as_dict() for rate in rates],
    }


def success_chart(summary: dict[str, Any]) -> dict[str, Any] | None:
    """A Plotly figure: attack success rate per behaviour, with its Wilson interval as error bars."""
    rows = [b for b in summary["behaviors"] if b["success_rate"] is not None]
    if not rows:
        return None
    labels = [f"#{i + 1}" for i, b in enumerate(summary["behaviors"]) if b["success_rate"] is not None]
    rates = [b["success_rate"] for b in rows]
    data = [
        {
            "type": "bar",
            "x": labels,
            "y": rates,
            "text": [b["behavior"] for b in rows],
            "marker": {"color": "#c0392b"},
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [b["ci_high"] - b["success_rate"] for b in rows],
                "arrayminus": [b["success_rate"] - b["ci_low"] for b in rows],
            },
            "hovertemplate": "%{text}<br>%{y:.1f}% of attacks succeeded<extra></extra>",
        }
    ]
    layout = {
        "title": {"text": "Attack success rate per behaviour (95% Wilson interval)", "font": {"size": 15}},
        "yaxis": {"title": {"text": "% of attacks that succeeded"}, "range": [0, 100]},
        "height": 320,
        "margin": {"l": 55, "r": 15, "t": 45, "b": 45},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout}


def worst_first(prompts: list[RedTeamPrompt]) -> list[RedTeamPrompt]:
    """Successful attacks first, then by the lowest score; unscored last, in order."""

    def key(prompt: RedTeamPrompt) -> tuple[int, float, int, int]:
        rank = {True: 0, False: 1, None: 2}[prompt.succeeded]
        worst = prompt.worst_score
        return rank, worst if worst is not None else 2.0, prompt.behavior_index, prompt.position

    return sorted(prompts, key=key)
