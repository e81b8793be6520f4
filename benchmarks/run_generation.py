"""Generate a run through the `openai` provider against the local stand-in provider (standin.py) with fixed latency L.

Reports wall time against the ideal N·L/c, writer calls per sample, the largest quota error (|expected - requested|
in percentage points, over every value of every unconditioned property) against the 100/N bound, and the worker's
peak memory. Targets: wall ≤ 1.25 × ideal, exactly 1 call per sample (no filter), quota error < 100/N.
Usage: python run_generation.py [N] [LATENCY_SECONDS] [CONCURRENCY]
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import Counter

from common import STANDIN_MODEL, measure_against_standin, setup_django, standin_server

# Uneven shares (a quota that does not divide N evenly) and a conditional property.
SPEC_YAML = """\
spec:
  description: "Customer support messages"
  requirements: "One message from a customer, then the agent's reply."
  data_property_variations:
    - property_name: topic
      property_values: [billing, shipping, technical, returns, account]
      base_distributions: {billing: 27, shipping: 23, technical: 21, returns: 17, account: 12}
    - property_name: sentiment
      property_values: [positive, negative, neutral]
      base_distributions: {positive: 33, negative: 41, neutral: 26}
    - property_name: channel
      property_values: [email, chat, phone]
      base_distributions: {email: 45, chat: 35, phone: 20}
    - property_name: priority
      property_values: [high, medium, low]
      base_distributions: {high: 20, medium: 50, low: 30}
      conditional_distributions:
        sentiment:
          negative: {high: 55, medium: 35, low: 10}
"""


def main(n: int = 2000, latency: float = 0.1, concurrency: int = 8) -> dict[str, float]:
    with standin_server(latency) as url:
        return run(n, latency, concurrency, url)


def run(n: int, latency: float, concurrency: int, url: str) -> dict[str, float]:
    setup_django()

    from llm.models import JudgeCall
    from runs.assignment import distribution_for
    from runs.generation import run_generate
    from runs.models import Run
    from runs.services import spec_create

    membership = measure_against_standin(url, concurrency)  # this process is the worker being measured
    spec = spec_create(company=membership.company, created_by=None, name="bench", content_yaml=SPEC_YAML)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    cpu_started = time.process_time()
    started = time.perf_counter()
    # As the API does it; with Q_CLUSTER sync every work item (start, write) runs here, in turn.
    created = run_generate(
        company=membership.company, created_by=None, spec=spec, number_of_samples=n, generation_model=STANDIN_MODEL
    )
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # this process's CPU: on a loaded machine, what the wall waits on

    run_ = Run.objects.get(pk=created.pk)
    assert run_.status == "SUCCEEDED", run_.runtime_params.get("error")
    assert run_.samples_completed == n, (run_.samples_completed, run_.samples_failed)
    # Quota error: the unconditioned properties' expected shares against their requested (base) shares, in points;
    # and, for every property, within every group of samples that follow one distribution (a conditioned property
    # has one per parent value), how far a value's count is from its exact quota, in samples (the bound is < 1).
    assigned = list(run_.samples.values_list("properties", flat=True))
    worst, worst_samples = 0.0, 0.0
    for prop in run_.spec_version.parsed_properties:
        groups: dict[tuple[str, str] | None, list[str]] = {}
        for values in assigned:
            groups.setdefault(distribution_for(prop, values)[0], []).append(values[prop.name])
        for key, members in groups.items():
            distribution = distribution_for(prop, {key[0]: key[1]} if key else {})[1]
            counts = Counter(members)
            for value in prop.values:
                quota = distribution.get(value, 0) * len(members) / 100
                worst_samples = max(worst_samples, abs(counts[value] - quota))
                if key is None and not prop.conditional_distributions:
                    worst = max(worst, abs(100 * counts[value] / n - distribution.get(value, 0)))
    calls = JudgeCall.objects.filter(run=run_, purpose="generate").count()
    ideal = n * latency / concurrency
    figures = {
        "samples": n,
        "latency_s": latency,
        "concurrency": concurrency,
        "wall_s": wall,
        "ideal_s": ideal,
        "wall_over_ideal": wall / ideal,
        "cpu_s": cpu,
        "load_average_1min": os.getloadavg()[0],
        "calls_per_sample": calls / n,
        "max_quota_error_pp": worst,
        "quota_bound_pp": 100 / n,
        "max_group_quota_error_samples": worst_samples,
        "total_cost_usd": float(run_.total_cost),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_growth_during_generation_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
    }
    print(
        f"run_generation: N={n} L={latency * 1000:.0f} ms c={concurrency}: wall {wall:.2f} s vs ideal {ideal:.2f} s "
        f"(x{figures['wall_over_ideal']:.3f}), CPU {cpu:.2f} s at load {os.getloadavg()[0]:.1f}; {figures['calls_per_sample']:.3f} calls/sample; max quota error "
        f"{worst:.4f} pp (bound 100/N = {100 / n:.4f} pp), within conditional groups {worst_samples:.3f} samples "
        f"(bound < 1); peak RSS {figures['peak_rss_mb']:.0f} MB "
        f"(+{figures['rss_growth_during_generation_mb']:.0f} MB while generating)"
    )
    return figures


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 2000, float(args[1]) if len(args) > 1 else 0.1, int(args[2]) if len(args) > 2 else 8)
