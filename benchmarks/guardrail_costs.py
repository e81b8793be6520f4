"""What one guardrail evaluation costs in each run mode, against grading each metric in its own call.

For every run mode (economy, smart, precision, precision_plus) one realistic customer-support input is graded on
all six metrics through the real services and the real Anthropic / OpenAI SDKs, with the network replaced by
tests.evaluations.fakes.FakeProvider. The JudgeCall ledger gives, per evaluation: provider calls, input tokens
(uncached + cache reads + cache writes, and the uncached part = plain input + cache writes), output tokens and
cost in USD at the catalog's prices. Each mode is compared with a baseline of one call per metric with the same
judge model(s) (for economy and smart, a temporary per-metric run mode; precision and precision_plus already
make one call per metric, so they are their own baseline).

The figures are estimates, not measurements of a real model: the stand-in counts tokens as len(text) // 4, and
its answers are short (one verdict and a one-line rationale per metric), so output tokens are a floor. Prompt
caching is the stand-in's: a system prompt is written to the cache the first time it is seen and read after.
Each mode grades the input twice with fresh stand-ins: the first evaluation is "cold" (cache writes), the
second "warm" (the steady state, where the system prompt of the same metric set is cached from an earlier
evaluation); the warm one gives the main figures. Usage: python guardrail_costs.py
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from common import setup_django

if TYPE_CHECKING:
    from companies.models import Company

MODES = ("economy", "smart", "precision", "precision_plus")
SYSTEM_PROMPT = """\
You are Nova, the support assistant for Lumen Home, which sells the Lumen Smart Thermostat and its companion \
app. Answer customer questions about installation, wiring, schedules, energy reports, the Lumen Plus \
subscription and troubleshooting. Base every answer on the help-centre excerpt supplied with the question; if \
the excerpt does not cover something, say so and offer to open a ticket instead of guessing. Be warm but brief: \
at most 180 words, in plain English, with numbered steps whenever you describe a procedure. Never ask for or \
repeat a customer's full payment card number, password or home address. Do not promise refunds, credits or \
delivery dates: only the billing team can grant them. Do not mention competitors' products by name. If the \
customer reports a burning smell, sparks or exposed wiring, tell them to switch off the breaker and call a \
licensed electrician before anything else. End with one short line asking whether the answer solved the problem."""
USER_PROMPT = """\
Hi, since I moved my thermostat to the hallway it keeps showing error E4 and the screen goes blank after a few \
minutes. Also, I was charged twice for Lumen Plus this month. How do I fix the error, and can I get the extra \
charge back?"""
CONTEXT = """\
Lumen Smart Thermostat (2nd generation) - Help centre: error codes, power and billing.

E1 - Wi-Fi lost. The thermostat keeps running its schedule offline. Reconnect under Settings > Network.

E4 - Insufficient power. The thermostat is not receiving steady 24 V power from the heating system. This \
usually means no common wire (C-wire) is connected, often after the thermostat has been moved to a wall whose \
cable has no C-wire. Without steady power the built-in battery drains and the screen goes blank to save energy.
To fix E4:
1. Switch off power to the heating system at the breaker.
2. Lift the thermostat off its base plate and check whether a wire is connected to the C terminal.
3. If there is a spare wire in the cable, connect it to C on the base plate and to C on the furnace control \
board, or install the Lumen Power Adapter (sold separately, USD 24.99), which powers the thermostat without a \
C-wire.
4. Restore power and wait about 10 minutes for the battery to charge. E4 clears by itself once the voltage has \
been stable for 5 minutes.
If E4 persists for 24 hours with a C-wire connected, contact support with a photo of the wiring.

E7 - Temperature sensor fault. Restart the thermostat from Settings > Device > Restart; if E7 returns, the \
unit is replaced under warranty (2 years from purchase).

Lumen Plus. The subscription costs USD 4.99 per month or USD 49 per year and adds 12 months of energy history, \
geofencing and priority support. Charges appear as "LUMEN HOME PLUS" on card statements. A second charge in \
the same month is usually a pending authorisation from a card update, and it drops off within 3-5 business \
days. If both charges are still shown as posted after 5 business days, the customer can ask for a review in \
the app under Account > Billing > Report a problem, or support can open a billing ticket. Refunds of confirmed \
duplicate charges are issued by the billing team to the original payment method within 10 business days of \
approval. Support agents cannot issue refunds or credits themselves."""
GROUND_TRUTH = """\
E4 means the thermostat is not getting steady 24 V power, most likely because the hallway wall has no C-wire. \
Switch off the breaker, check the C terminal, and either connect a spare wire to C at both ends or fit the \
Lumen Power Adapter; then restore power and wait about 10 minutes. The second Lumen Plus charge is probably a \
pending authorisation that drops off within 3-5 business days; if it is still posted after that, report it \
under Account > Billing > Report a problem so the billing team can review it."""
MODEL_OUTPUT = """\
Sorry about the trouble with your thermostat and the double charge - let's sort both out.

Error E4 means your thermostat isn't getting steady 24 V power. Since you moved it to the hallway, the cable \
there probably has no C-wire, so the battery drains and the screen goes blank. To fix it:
1. Switch off your heating system at the breaker.
2. Lift the thermostat off its base plate and check whether a wire is connected to the C terminal.
3. If there is a spare wire in the cable, connect it to C on the base plate and on the furnace control board. \
If there isn't one, the Lumen Power Adapter (USD 19.99) powers the thermostat without a C-wire.
4. Turn the power back on and wait about 10 minutes; E4 should clear on its own.

About Lumen Plus: a second charge in the same month is usually a pending authorisation that disappears within \
3-5 business days. If both charges are still posted after that, go to Account > Billing > Report a problem in \
the app, and the extra charge will be refunded to your card within 10 business days.

Did this solve your problem?"""
MODEL_INPUT = {
    "system_prompt": SYSTEM_PROMPT,
    "user_prompt": USER_PROMPT,
    "context": CONTEXT,
    "ground_truth": GROUND_TRUTH,
}


def evaluate_once(company: Company, run_mode: str) -> dict[str, float]:
    """Create one evaluation (django-q runs it inline when committed) and sum its ledger rows."""
    from django.db.models import Count, Sum

    from guardrails import services
    from guardrails.metrics import METRICS
    from guardrails.models import GuardrailEvaluation
    from llm.models import JudgeCall

    created = services.guardrail_evaluation_create(
        company=company,
        created_by=None,
        model_input=MODEL_INPUT,
        model_output=MODEL_OUTPUT,
        run_mode=run_mode,
        guardrail_metrics=list(METRICS),
    )
    evaluation = GuardrailEvaluation.objects.get(pk=created.pk)
    assert evaluation.status == "completed", (run_mode, evaluation.status, evaluation.error_message)
    assert evaluation.trace["offline_judge"] is False, evaluation.trace  # the stand-in judged, not the heuristic
    assert set(evaluation.evaluation_result or {}) == set(METRICS)
    calls = JudgeCall.objects.filter(guardrail_evaluation=evaluation, purpose="guardrail")
    assert not calls.exclude(outcome="ok").exists(), list(calls.values_list("outcome", "error"))
    sums = calls.aggregate(
        n=Count("id"),
        i=Sum("input_tokens"),
        r=Sum("cache_read_tokens"),
        w=Sum("cache_write_tokens"),
        o=Sum("output_tokens"),
        c=Sum("cost_usd"),
    )
    plain, read, write = sums["i"] or 0, sums["r"] or 0, sums["w"] or 0
    return {
        "calls": float(sums["n"]),
        "input_tokens": float(plain + read + write),
        "input_uncached": float(plain + write),
        "cache_read": float(read),
        "cache_write": float(write),
        "output_tokens": float(sums["o"] or 0),
        "cost_usd": float(sums["c"] or 0),
    }


def measure(company: Company, run_mode: str) -> dict[str, float]:
    """A cold then a warm evaluation of `run_mode`, with stand-ins of its own (so no cache carries over)."""
    from llm import providers
    from tests.guardrails.test_scoring import guardrail_answer
    from tests.llm.fakes import FakeProvider

    fakes = {
        "anthropic": FakeProvider("anthropic", guardrail_answer(0.8)),
        "openai": FakeProvider("openai", guardrail_answer(0.6)),
    }
    providers.http_client_for = lambda model: fakes["openai" if model.provider == "openai" else "anthropic"].client()
    try:
        cold = evaluate_once(company, run_mode)
        warm = evaluate_once(company, run_mode)
    finally:
        providers.http_client_for = None
    assert sum(f.calls for f in fakes.values()) == cold["calls"] + warm["calls"]  # every call is in the ledger
    return warm | {"cost_usd_cold": cold["cost_usd"], "input_uncached_cold": cold["input_uncached"]}


def main() -> dict[str, dict[str, float]]:
    setup_django()
    from django.conf import settings
    from django_q.conf import Conf

    from companies.services import member_ensure
    from guardrails.metrics import METRICS
    from guardrails.rubrics import run_mode_config

    Conf.SYNC = True  # the on_commit enqueue runs the task inline, once: no separate run_guardrail_evaluation call
    # Dummy keys, so the judges resolve to the real providers (whose network is the stand-in), not the heuristic.
    os.environ["ANTHROPIC_API_KEY"] = "bench-anthropic-key"
    os.environ["OPENAI_API_KEY"] = "bench-openai-key"
    membership = member_ensure(company_name=f"Bench {time.time()}", email="bench@example.test")
    company = membership.company

    figures: dict[str, dict[str, float]] = {}
    for mode in MODES:
        config = run_mode_config(mode)
        result = measure(company, mode)
        if config.call_per_metric:
            baseline = result  # already one call per metric with the mode's judges
        else:
            # The service does not validate run_mode (only the API does), so a temporary mode in the setting is
            # enough: the same judge, each metric in its own call, with the per-metric modes' reply budget.
            name = f"baseline_{mode}"  # at most 16 characters: GuardrailEvaluation.run_mode is a CharField(16)
            settings.GUARDRAIL_RUN_MODES[name] = {
                "judges": list(config.judges),
                "call_per_metric": True,
                "max_tokens": 2048,
            }
            try:
                baseline = measure(company, name)
            finally:
                del settings.GUARDRAIL_RUN_MODES[name]
        result |= {f"baseline_{key}": value for key, value in baseline.items()}
        result["cost_vs_baseline"] = result["cost_usd"] / baseline["cost_usd"]
        figures[mode] = result

    print(
        f"guardrail_costs: one customer-support evaluation on all {len(METRICS)} metrics per run mode. Tokens are the "
        "stand-in's len(text)//4 estimate and its answers are short (output tokens are a floor); 'warm' = system "
        "prompt cached by an earlier evaluation (the steady state), 'cold' = first evaluation (cache writes)."
    )
    for mode, r in figures.items():
        print(
            f"guardrail_costs: {mode} ({' + '.join(run_mode_config(mode).judges)}): {r['calls']:.0f} call(s); input "
            f"{r['input_tokens']:,.0f} tokens ({r['input_uncached']:,.0f} uncached incl. {r['cache_write']:,.0f} "
            f"cache writes, {r['cache_read']:,.0f} cache reads), output {r['output_tokens']:,.0f}; "
            f"${r['cost_usd']:.4f} warm, ${r['cost_usd_cold']:.4f} cold | one call per metric: "
            f"{r['baseline_calls']:.0f} calls, input {r['baseline_input_tokens']:,.0f} "
            f"({r['baseline_input_uncached']:,.0f} uncached), output {r['baseline_output_tokens']:,.0f}, "
            f"${r['baseline_cost_usd']:.4f} warm, ${r['baseline_cost_usd_cold']:.4f} cold "
            f"| x{r['cost_vs_baseline']:.2f} of the per-metric cost"
        )
    columns = [
        ("mode", 15), ("calls", 6), ("input", 8), ("uncached", 9), ("output", 7), ("$ warm", 9), ("$ cold", 9),
        ("base calls", 11), ("base $ warm", 12), ("x base", 7),
    ]  # fmt: skip
    print("".join(f"{title:>{width}}" if i else f"{title:<{width}}" for i, (title, width) in enumerate(columns)))
    print("-" * sum(width for _title, width in columns))
    for mode, r in figures.items():
        print(
            f"{mode:<15}{r['calls']:>6.0f}{r['input_tokens']:>8,.0f}{r['input_uncached']:>9,.0f}"
            f"{r['output_tokens']:>7,.0f}{r['cost_usd']:>9.4f}{r['cost_usd_cold']:>9.4f}{r['baseline_calls']:>11.0f}"
            f"{r['baseline_cost_usd']:>12.4f}{r['cost_vs_baseline']:>7.2f}"
        )
    return figures


if __name__ == "__main__":
    main()
