"""The offline provider: no network, no key. It runs the task's own offline function (the embedded judge for
classification, llm/embedded.py; the guardrail heuristics, guardrails/offline.py), and `stems`, the word
normaliser those heuristics share."""

from __future__ import annotations

import re
from typing import Any

from .base import Reply, StructuredRequest, Usage

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


def stem(word: str) -> str:
    for suffix in SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS}


class OfflineProvider:
    name = "offline"

    def complete(self, request: StructuredRequest) -> Reply:
        task: Any = request.offline_task
        if callable(task):
            return Reply(task(), Usage())
        raise ValueError("the offline judge needs an offline_task")
