"""The floor under issue #26's fixed-cost target: N calls, c at a time, at latency L, with nothing of ours around
them (no database, no work item, no ledger), each way a call can be made. What each way takes over N·L/c is the
least an evaluation of N samples can take over it, before the API's answer reaches a worker (the head) and before
the explanation's own call after the last answer (one more L).

Ways: threads that only sleep L (the pool itself); plain httpx2 posting the request's JSON (HTTP and the stand-in);
the OpenAI SDK as the worker calls it (`OpenAIProvider.complete`, our deadline-bounded client, our reply parsing);
the same through `ask_each` and `Judge.ask` (the engine's threads, limiter and hand-offs, no ledger); the SDK's
AsyncOpenAI on one event loop (no threads at all). The stand-in runs in its own process.

Usage: python sdk_floor.py [N] [LATENCY_SECONDS] [REPETITIONS]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import STANDIN_MODEL, measure_against_standin, setup_django, standin_server

SCHEMA = {
    "type": "object",
    "properties": {
        "values": {
            "type": "object",
            "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
            "required": ["sentiment"],
            "additionalProperties": False,
        },
        "rationales": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["values", "rationales"],
    "additionalProperties": False,
}


def main(n: int = 200, latency: float = 0.2, repetitions: int = 3) -> dict[str, float]:
    setup_django()
    from django.conf import settings

    from llm.base import StructuredRequest
    from llm.catalog import get_judge_model
    from llm.engine import Judge, ask_each
    from llm.providers import build_provider

    concurrency = settings.JUDGE_CONCURRENCY
    ideal = n * latency / concurrency
    with standin_server(latency) as url:
        measure_against_standin(url, concurrency)
        model = get_judge_model(STANDIN_MODEL)
        provider = build_provider(model)
        judge = Judge(model, provider)
        system = "You label support tickets. " * 60  # about the classify prompt's size
        requests = [
            StructuredRequest(
                purpose="classify", system=system, user=f"<sample>ticket {i} " * 40 + "</sample>", schema=SCHEMA
            )
            for i in range(n)
        ]
        import httpx2
        import openai

        plain = httpx2.Client()

        def threads(call: Callable[[Any], Any]) -> None:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(call, requests))

        def engine() -> None:
            ask_each(requests, lambda r: judge.ask(r, lambda data: data), lambda r, outcome: True)

        async def gather() -> None:
            # A client per run: asyncio.run closes its loop, and a client's connections belong to the loop that
            # opened them (so this way pays its 8 connections' opening in each run: about a millisecond each).
            slots = asyncio.Semaphore(concurrency)
            async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="standin", max_retries=0) as client:

                async def one(request: Any) -> None:
                    async with slots:
                        reply = await client.chat.completions.create(**provider.params(request))
                        json.loads(reply.choices[0].message.content or "{}")

                await asyncio.gather(*(one(r) for r in requests))

        ways: dict[str, Callable[[], None]] = {
            "threads that only sleep L": lambda: threads(lambda r: time.sleep(latency)),
            "httpx2, no SDK": lambda: threads(
                lambda r: plain.post(f"{url}/v1/chat/completions", json=provider.params(r))
            ),
            "the OpenAI SDK as the worker calls it": lambda: threads(provider.complete),
            "ask_each + Judge.ask (no ledger)": engine,
            "AsyncOpenAI, one event loop": lambda: asyncio.run(gather()),
        }
        figures = {}
        for name, way in ways.items():
            way()  # warm-up: connections, imports
            walls = []
            for _ in range(repetitions):
                started = time.perf_counter()
                way()
                walls.append(time.perf_counter() - started)
            figures[name] = statistics.median(walls)
            print(
                f"sdk_floor: {name}: {figures[name]:.3f} s, +{figures[name] - ideal:.3f} s over N·L/c = {ideal:.2f} s "
                f"(median of {repetitions}: {', '.join(f'{w:.3f}' for w in walls)})",
                flush=True,
            )
    return figures


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 200, float(args[1]) if len(args) > 1 else 0.2, int(args[2]) if len(args) > 2 else 3)
