"""Judge a run through the `openai` provider against the local stand-in provider (standin.py) with fixed latency L.

Reports wall time against the ideal N·L/c, provider calls per sample, input tokens per sample with and without
prompt caching, and the worker's peak memory. Targets: wall ≤ 1.25 × ideal, exactly 1 call per sample, memory
flat as N grows. Usage: python judge_throughput.py [N] [LATENCY_SECONDS] [CONCURRENCY]
"""

from __future__ import annotations

import random
import resource
import sys
import time

from common import STANDIN_MODEL, measure_against_standin, setup_django, standin_server

PROPERTIES = {
    "topic": ["billing", "shipping", "technical", "returns", "account"],
    "sentiment": ["positive", "negative", "neutral"],
    "priority": ["high", "medium", "low"],
    "channel": ["email", "chat", "phone"],
    "language": ["english", "spanish", "german", "french"],
}
WORDS = [
    "order",
    "refund",
    "package",
    "screen",
    "charge",
    "delivery",
    "login",
    "password",
    "broken",
    "late",
    "thanks",
    "help",
    "please",
    "urgent",
]


def spec_yaml() -> str:
    lines = ["spec:", "  description: benchmark", "  data_property_variations:"]
    for name, values in PROPERTIES.items():
        lines += [f"    - property_name: {name}", f"      property_values: [{', '.join(values)}]",
                  f"      property_description: the {name} of the message"]  # fmt: skip
    return "\n".join(lines) + "\n"


def rows(n: int) -> list[dict[str, object]]:
    rng = random.Random(7)
    return [
        {
            "identifier": f"sample_{i}",
            "content": " ".join(rng.choice(WORDS) for _ in range(60)) + f" #{i}",
            "properties": {name: rng.choice(values) for name, values in PROPERTIES.items()},
        }
        for i in range(1, n + 1)
    ]


def main(n: int = 1000, latency: float = 0.1, concurrency: int = 8) -> dict[str, float]:
    with standin_server(latency) as url:
        return run(n, latency, concurrency, url)


def run(n: int, latency: float, concurrency: int, url: str) -> dict[str, float]:
    setup_django()
    from django.db.models import Sum

    from evaluations import services
    from llm.models import JudgeCall
    from runs.services import run_import, spec_create

    membership = measure_against_standin(url, concurrency)  # this process is the worker being measured
    spec = spec_create(company=membership.company, created_by=None, name="bench", content_yaml=spec_yaml())
    run_ = run_import(company=membership.company, created_by=None, spec=spec, rows=rows(n))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    started = time.perf_counter()
    # As the API does it; with Q_CLUSTER sync every work item (start, classify, finalize) runs here, in turn.
    evaluation = services.evaluation_create(
        company=membership.company, created_by=None, run=run_, model_name=STANDIN_MODEL
    )
    wall = time.perf_counter() - started

    evaluation.refresh_from_db()
    assert evaluation.status == "SUCCEEDED", evaluation.error_message
    calls = JudgeCall.objects.filter(evaluation=evaluation, purpose="classify")
    sums = calls.aggregate(i=Sum("input_tokens"), r=Sum("cache_read_tokens"), w=Sum("cache_write_tokens"))
    uncached = (sums["i"] or 0) + (sums["w"] or 0)
    total_input = uncached + (sums["r"] or 0)
    ideal = n * latency / concurrency
    figures = {
        "samples": n,
        "latency_s": latency,
        "concurrency": concurrency,
        "wall_s": wall,
        "ideal_s": ideal,
        "wall_over_ideal": wall / ideal,
        "calls_per_sample": calls.count() / n,
        "input_tokens_per_sample_without_caching": total_input / n,
        "input_tokens_per_sample_billed_uncached_with_caching": uncached / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_growth_during_evaluation_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
    }
    print(
        f"judge_throughput: N={n} L={latency * 1000:.0f} ms c={concurrency}: wall {wall:.2f} s vs ideal {ideal:.2f} s "
        f"(x{figures['wall_over_ideal']:.3f}); {figures['calls_per_sample']:.3f} calls/sample; input tokens/sample "
        f"{figures['input_tokens_per_sample_without_caching']:.0f} without caching, "
        f"{figures['input_tokens_per_sample_billed_uncached_with_caching']:.0f} uncached with caching; "
        f"peak RSS {figures['peak_rss_mb']:.0f} MB (+{figures['rss_growth_during_evaluation_mb']:.0f} MB while judging)"
    )
    return figures


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 1000, float(args[1]) if len(args) > 1 else 0.1, int(args[2]) if len(args) > 2 else 8)
