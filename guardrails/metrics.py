"""The guardrail vocabulary every part shares: metrics, run modes, model input fields and what each metric needs.

Its own module so the LLM rubrics (rubrics.py) and the offline heuristic (offline.py) both build on it without
importing each other.
"""

from __future__ import annotations

from typing import Any

METRICS = (
    "correctness",
    "completeness",
    "instruction_adherence",
    "context_adherence",
    "ground_truth_adherence",
    "comprehensive_safety",
)
RUN_MODES = ("precision_plus", "precision", "smart", "economy")
DEFAULT_RUN_MODE = "smart"
# Asked for when a request names no metrics; the two adherence metrics join when their reference is given.
DEFAULT_METRICS = ("correctness", "completeness", "instruction_adherence", "comprehensive_safety")
SAFETY_CATEGORIES = ("cbrn", "pii", "hate_harassment", "violence", "sexual_content", "self_harm")
# `context` is our addition: the deeprails 1.9.0 client's ModelInput has only the other three.
MODEL_INPUT_FIELDS = ("system_prompt", "user_prompt", "context", "ground_truth")
# Each metric's reference in model_input, without which it cannot be graded. context_adherence is not here: its
# context is whatever the model was given (the prompts, plus `context` when sent), and a prompt is always given.
METRIC_NEEDS = {"ground_truth_adherence": "ground_truth"}
# The optional field whose presence adds a metric to the default set (the caller brought material to check).
DEFAULT_WHEN_GIVEN = {"context_adherence": "context", "ground_truth_adherence": "ground_truth"}
CONTEXT_FIELDS = ("system_prompt", "user_prompt", "context")


def default_metrics(model_input: dict[str, Any]) -> list[str]:
    """The documented default set: the four base metrics, plus each adherence metric whose reference is given."""
    metrics = list(DEFAULT_METRICS)
    for metric, field in DEFAULT_WHEN_GIVEN.items():
        if str(model_input.get(field) or "").strip():
            metrics.insert(metrics.index("comprehensive_safety"), metric)
    return metrics


def grading_context(model_input: dict[str, Any]) -> str:
    """What context_adherence grades against: everything the model was given before it answered."""
    return "\n".join(str(model_input.get(f) or "") for f in CONTEXT_FIELDS if str(model_input.get(f) or "").strip())
