"""The offline judge: a deterministic keyword heuristic that needs no network.

It is honest about what it is (every result it produces says `offline/heuristic`), and it is meant for demos,
development and air-gapped tries, not for decisions. For each property it scores every value by the cue words
found in the sample: the value's own name, the words the property description ties to it ("a charge or invoice
(billing)"), and a small built-in lexicon for common values (sentiment, priority, resolution, ...). Ties and
samples with no cue at all go to the value the spec requests most.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .base import PropertyLike, Reply, StructuredRequest, Usage

WORD = re.compile(r"[a-z0-9']+")
SUFFIXES = ("ingly", "ation", "ings", "ing", "edly", "ed", "ies", "es", "ly", "s")
STOPWORDS = {
    "a",
    "an",
    "the",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "as",
    "at",
    "by",
    "from",
    "when",
    "whether",
    "about",
    "some",
    "any",
    "their",
    "them",
    "they",
    "his",
    "her",
    "our",
    "your",
    "my",
    "me",
    "we",
    "you",
    "i",
    "not",
    "no",
}

# Cue words for values that recur across specs. Keys are value names; a spec's own descriptions add more.
LEXICON: dict[str, str] = {
    "positive": "thank thanks great love loved happy excellent awesome perfect appreciate pleased glad amazing "
    "wonderful fantastic helpful impressed delighted smooth enjoy fast quick easy best nice",
    "negative": "angry terrible awful worst disappointed frustrated frustrating unacceptable broken complaint useless "
    "annoyed annoying ridiculous furious upset still again twice wrong damaged missing never horrible waste poor "
    "fed sick bad fault problem ruined hate scam",
    "neutral": "question wondering information confirm could would how when which whether details clarify",
    "high": "urgent asap immediately emergency deadline today tonight safety fire smoke burning hot sparks fraud "
    "lawyer chargeback critical twice overcharged stolen tomorrow dangerous",
    "medium": "soon week problem issue help please",
    "low": "rush whenever minor small curious wondering eventually convenience",
    "resolved": "refunded issued processed fixed done resolved solved sent applied updated corrected credited "
    "reversed added replaced shipped works",
    "escalated": "escalate escalated escalating specialist team forwarded supervisor engineering tier department "
    "manager investigation",
    "pending": "wait waiting once after pending investigate check within business days hours update reply send "
    "confirm inspection carrier",
    "billing": "charge charged invoice bill billing payment refund card price paid vat tax fee subscription receipt",
    "shipping": "delivery delivered shipping shipped package parcel carrier tracking courier arrived fedex ups dhl "
    "usps address transit",
    "technical": "error crash bug firmware software update install reset screen battery won't doesn't broken "
    "connect bluetooth wifi driver reboot code",
    "returns": "return returned returning exchange rma label send back refund unopened box",
}


def stem(word: str) -> str:
    for suffix in SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS}


def _description_cues(prop: PropertyLike, value: str) -> str:
    """Words the description ties to `value`: the clause before "(value)", or after "value:"."""
    text = prop.description
    for pattern in (
        rf"([^,;:()]+)\(\s*{re.escape(value)}\s*\)",
        rf"\b{re.escape(value)}\s*[:=-]\s*([^,;()]+)",
    ):
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match:
            return match.group(1)
    return ""


def value_cues(prop: PropertyLike) -> dict[str, set[str]]:
    cues = {}
    for value in prop.values:
        words = f"{value.replace('_', ' ')} {_description_cues(prop, value)} {LEXICON.get(value.lower(), '')}"
        cues[value] = stems(words)
    # A cue shared by every value tells nothing.
    common = set.intersection(*cues.values()) if cues else set()
    return {value: words - common for value, words in cues.items()}


def classify_text(text: str, properties: Iterable[PropertyLike]) -> dict[str, str]:
    tokens = stems(text)
    answer = {}
    for prop in properties:
        cues = value_cues(prop)

        def score(value: str, cues: dict[str, set[str]] = cues, prop: PropertyLike = prop) -> tuple[int, float]:
            return len(tokens & cues[value]), prop.base_distribution.get(value, 0.0)

        answer[prop.name] = max(prop.values, key=score)
    return answer


class OfflineProvider:
    name = "offline"

    def complete(self, request: StructuredRequest) -> Reply:
        task: Any = request.offline_task
        if callable(task):
            return Reply(task(), Usage())
        raise ValueError("the offline judge needs an offline_task")
