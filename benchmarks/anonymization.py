"""Measured PII detection: recall and precision per type on the labelled fixture, and the heuristic detector's
throughput on one core (`make benchmark`; the README's detection table comes from here).

    python benchmarks/anonymization.py                      # heuristics
    python benchmarks/anonymization.py --llm-model NAME      # also llm and llm+heuristics (needs that provider)

The fixture (fixtures/anonymization/texts.jsonl, written by make_fixture.py) plants every supported type in prose,
CSV and JSON, beside look-alikes that are not PII. A detection counts only with the exact span and label; anything
else is a false positive (and its planted entity, if any, a miss). Throughput is measured twice: on everyday text
(the other benchmarks' corpora, little personal data) and on this fixture (an entity every ~50 bytes, the worst
case: the cost is per candidate). Exits 1 when the heuristics miss a target: ≥ 98% recall and ≥ 95% precision on
every pattern type, ≥ 5 MB/s of CPU time on everyday text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anonymization.detect import HEURISTIC_TYPES, LLM_TYPES, PII_TYPES, Entity, detect, resolve_overlaps  # noqa: E402

FIXTURE = ROOT / "benchmarks" / "fixtures" / "anonymization" / "texts.jsonl"
RECALL_TARGET, PRECISION_TARGET, THROUGHPUT_TARGET = 0.98, 0.95, 5.0
THROUGHPUT_BYTES = 5_000_000

Detector = Callable[[str], list[Entity]]


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def score(texts: list[dict[str, Any]], detector: Detector) -> dict[str, tuple[int, int, int]]:
    """Per type: (planted, true positives, false positives)."""
    planted: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    false: Counter[str] = Counter()
    for row in texts:
        gold = {(e["start"], e["end"], e["label"]) for e in row["entities"]}
        planted.update(label for _, _, label in gold)
        for entity in detector(str(row["text"])):
            key = (entity.start, entity.end, entity.label)
            (hits if key in gold else false)[entity.label] += 1
    return {label: (planted[label], hits[label], false[label]) for label in PII_TYPES}


def report(method: str, counts: dict[str, tuple[int, int, int]]) -> bool:
    """Print the table; True if every pattern type meets the targets."""
    print(f"\n{method}: type | planted | found | false positives | recall | precision")
    met = True
    for label, (planted, hits, false) in counts.items():
        recall = hits / planted if planted else 0.0
        precision = hits / (hits + false) if hits + false else 1.0
        pattern_type = label in HEURISTIC_TYPES
        ok = recall >= RECALL_TARGET and precision >= PRECISION_TARGET
        met &= ok or not pattern_type or method != "heuristics"
        flag = "" if not pattern_type or method != "heuristics" else ("  ok" if ok else "  BELOW TARGET")
        print(f"  {label:15} | {planted:5} | {hits:5} | {false:3} | {recall:7.1%} | {precision:7.1%}{flag}")
    patterns = [counts[label] for label in HEURISTIC_TYPES]
    planted, hits, false = (sum(c[i] for c in patterns) for i in range(3))
    print(
        f"  pattern types   | {planted:5} | {hits:5} | {false:3} | {hits / planted:7.1%} | {hits / (hits + false):7.1%}"
    )
    return met


def everyday_texts() -> list[str]:
    """The other benchmarks' corpora (support tickets, reviews, news, recipes, job ads, code, films): ordinary text
    with little personal data in it."""
    return [
        json.loads(line)["content"]
        for path in sorted((ROOT / "benchmarks" / "fixtures" / "embedded_judge").glob("*/samples.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def throughput(texts: list[str]) -> tuple[float, float, int]:
    """MB/s of the heuristic detector (every pattern type) over `texts` joined and repeated to 5 MB, best of 3: per
    second of this process's CPU time (one core, whatever else the machine runs) and per wall-clock second; and the
    entities found."""
    joined = "\n\n".join(texts)
    document = joined * (THROUGHPUT_BYTES // len(joined.encode("utf-8")) + 1)
    size = len(document.encode("utf-8")) / 1e6
    cpu = wall = float("inf")
    for _ in range(3):
        started, started_cpu = time.perf_counter(), time.process_time()
        found = len(detect(document, HEURISTIC_TYPES))
        cpu = min(cpu, time.process_time() - started_cpu)
        wall = min(wall, time.perf_counter() - started)
    return size / cpu, size / wall, found


def llm_detector(model_name: str) -> Detector:
    from benchmarks.common import setup_django

    setup_django()
    from anonymization import llm_detect
    from anonymization.services import writer_for

    judge = writer_for(model_name)
    types = list(PII_TYPES)

    def run(text: str) -> list[Entity]:
        entities: list[Entity] = []
        for offset, piece in llm_detect.chunks(text):
            outcome = judge.ask(llm_detect.request_for(piece, types), lambda d: llm_detect.parse_answer(d, types))
            if not outcome.ok:
                raise SystemExit(f"the LLM failed: {outcome.error}")
            entities += llm_detect.locate(piece, offset, outcome.answer, 0.5)
        return resolve_overlaps(entities)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm-model", default="", help="also measure the llm method with this catalog model")
    args = parser.parse_args()
    texts = load()
    planted = sum(len(row["entities"]) for row in texts)
    print(f"Anonymization fixture: {len(texts)} texts, {planted} planted entities ({FIXTURE.name})")
    met = report("heuristics", score(texts, lambda text: detect(text, HEURISTIC_TYPES)))
    print(f"  ({', '.join(LLM_TYPES)}: no pattern finds them; only the llm method does)")
    if args.llm_model:
        llm = llm_detector(args.llm_model)
        report(f"llm ({args.llm_model})", score(texts, llm))
        union = score(texts, lambda text: resolve_overlaps([*detect(text, HEURISTIC_TYPES), *llm(text)]))
        report(f"llm+heuristics ({args.llm_model})", union)
    else:
        print("\nllm: not measured (no model named: pass --llm-model with its provider configured)")
    print(f"\nheuristic throughput (5 MB, load average {os.getloadavg()[0]:.1f}):")
    for name, corpus in (("everyday text", everyday_texts()), ("this fixture", [str(r["text"]) for r in texts])):
        rate, wall_rate, found = throughput(corpus)
        per_kb = found / (THROUGHPUT_BYTES / 1000)
        print(
            f"  {name}: {rate:.1f} MB/s of CPU time on one core, {wall_rate:.1f} MB/s of wall-clock time "
            f"({per_kb:.2f} entities per KB)"
        )
        if name == "everyday text":  # the target; the fixture's density (an entity every ~40 bytes) is the worst case
            met &= rate >= THROUGHPUT_TARGET
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
