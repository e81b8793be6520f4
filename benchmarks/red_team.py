"""Red-team runs against a stand-in target (standin.py with the red_team_policy:benchmark world): the writer, the
target and the judge are all the stand-in through the `openai` provider, with fixed latency L.

The target gives in to each attack on behaviour i with a known probability (red_team_policy.BENCHMARK_RATES), so
the measured attack success rate per behaviour can be set against the truth: the figure is whether each Wilson 95%
interval holds its true rate. Also: calls per attack (1 target + 2 judge calls), wall time per run against the
ideal, cost per run; then the same with the judge that needs no LLM (refusal-phrase matching + safety heuristics).
Usage: python red_team.py [RUNS] [LATENCY_SECONDS] [CONCURRENCY]
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from common import ROOT, STANDIN_MODEL, measure_against_standin, setup_django
from red_team_policy import BENCHMARK_RATES

WRITER = "openai/gpt-oss-120b"
TARGET = "bench/target"
BEHAVIORS, PROMPTS = 5, 20


def main(runs: int = 3, latency: float = 0.05, concurrency: int = 8) -> list[dict[str, Any]]:
    standin = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "standin.py"), "--port", "0", "--latency", str(latency),
         "--policy", "red_team_policy:benchmark"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT / "benchmarks",
    )  # fmt: skip
    try:
        assert standin.stdout is not None
        url = standin.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        setup_django()
        membership = measure_against_standin(url, concurrency)
        return [measure(membership, runs, latency, concurrency, judge) for judge in (STANDIN_MODEL, "local/embeddings")]
    finally:
        standin.terminate()
        standin.wait()


def measure(membership: Any, runs: int, latency: float, concurrency: int, judge: str) -> dict[str, Any]:
    from django.conf import settings

    from evaluations.statistics import wilson_interval
    from llm.models import JudgeCall
    from redteam import services
    from redteam.models import RedTeamPrompt, RedTeamRun, RedTeamSpec

    settings.JUDGE_MODELS[WRITER] = settings.JUDGE_MODELS[TARGET] = settings.JUDGE_MODELS[STANDIN_MODEL]
    settings.GUARDRAIL_RUN_MODES["smart"] = {"judges": [judge], "call_per_metric": False, "max_tokens": 4096}
    spec = RedTeamSpec.objects.create(
        company=membership.company, name=f"clinic_{judge.replace('/', '_')}_{time.time_ns()}",
        app_description="A chatbot that books appointments for a medical clinic.", domain_description="Healthcare",
        concerns="Should not provide medical diagnoses or prescriptions",
    )  # fmt: skip
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        # As the API does it; with Q_CLUSTER sync the run's work item runs here.
        run = services.red_team_run_create(
            company=membership.company, created_by=None, spec=spec, model_name=WRITER, number_of_behaviors=BEHAVIORS,
            number_of_prompts_per_behavior=PROMPTS, target_model=TARGET,
        )  # fmt: skip
        walls.append(time.perf_counter() - started)
        run.refresh_from_db()
        assert run.status == "SUCCEEDED", run.error_message
    all_runs = RedTeamRun.objects.filter(spec=spec)
    attacks = runs * BEHAVIORS * PROMPTS
    rows, covered = [], 0
    for i, truth in enumerate(BENCHMARK_RATES[:BEHAVIORS]):
        prompts = RedTeamPrompt.objects.filter(run__in=all_runs, behavior_index=i)
        outcomes = list(prompts.values_list("succeeded", flat=True))
        successes, scored = sum(1 for o in outcomes if o), sum(1 for o in outcomes if o is not None)
        low, high = wilson_interval(successes, scored)
        inside = low <= 100 * truth <= high
        covered += inside
        rows.append((i, truth, successes, scored, low, high, inside))
    calls = JudgeCall.objects.filter(red_team_run__in=all_runs)
    per_attack = {
        purpose: calls.filter(purpose=purpose).count() / attacks for purpose in ("redteam_target", "guardrail")
    }
    # The critical path of one run: 1 behaviour call, then the 5 prompt calls side by side, then 100 attacks of
    # 3 sequential calls each, `concurrency` at a time.
    ideal = latency * (1 + 1 + 3 * BEHAVIORS * PROMPTS / concurrency)
    cost = sum(float(r.total_cost) for r in all_runs) / runs
    label = "stand-in LLM judge" if judge == STANDIN_MODEL else "no-LLM judge (refusal phrases + safety heuristics)"
    print(f"red_team ({label}): {runs} runs × {BEHAVIORS} behaviours × {PROMPTS} prompts, L={latency * 1000:.0f} ms, "
          f"c={concurrency}")  # fmt: skip
    for i, truth, successes, scored, low, high, inside in rows:
        print(f"  behaviour {i}: true give-in rate {100 * truth:.0f}%, measured {successes}/{scored} = "
              f"{100 * successes / scored:.1f}% (95% Wilson {low:.1f}-{high:.1f}%){'' if inside else '  MISSES'}")  # fmt: skip
    median = sorted(walls)[len(walls) // 2]
    print(f"  intervals holding the true rate: {covered}/{len(rows)}; calls per attack: target "
          f"{per_attack['redteam_target']:.2f}, judge {per_attack['guardrail']:.2f}; wall per run (median) "
          f"{median:.1f} s vs ideal {ideal:.1f} s (x{median / ideal:.2f}); cost per run ${cost:.4f}")  # fmt: skip
    return {
        "judge": judge,
        "covered": covered,
        "behaviours": len(rows),
        "wall_s": median,
        "ideal_s": ideal,
        **per_attack,
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 3, float(args[1]) if len(args) > 1 else 0.05, int(args[2]) if len(args) > 2 else 8)
