"""The embedded judge: classifies samples offline with small models that ship inside PyPI wheels (DESIGN.md §5).

- Topical properties: `wordllama`'s static token embeddings (l2_supercat, 256 dimensions, 16 MB, inside the wheel).
  A sample's mean-pooled embedding is compared by cosine with one prototype per value, built from the value's name,
  the property's name and the clause of the description tied to that value ("a delivery or courier (shipping)").
- Sentiment-like properties (values among positive / negative / neutral): the VADER lexicon's compound score, which
  the embeddings cannot capture (they put "great" and "terrible" close together).

Either way the judge abstains (value None) when the margin between the best and the second-best value is below a
threshold calibrated on the tuning split of `benchmarks/fixtures/embedded_judge/` (see
`benchmarks/embedded_judge.py --calibrate`). It never falls back to a default value.
Within an evaluation it follows the evaluation's plan (llm/embedded_plan.py): a property the run's evidence says it
cannot judge is declined on every sample, and one taught by human labels is judged by their centroids.

Pure Python + numpy: no Django, no network. The models load once per process, lazily, under a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import PropertyLike

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from tokenizers import Tokenizer
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# Says what it is: static word embeddings (wordllama) plus a sentiment lexicon (VADER), both running locally.
MODEL_NAME = "local/embeddings"
WORDLLAMA_CONFIG = "l2_supercat"
WORDLLAMA_DIM = 256

# Calibrated on the tuning split only (`python benchmarks/embedded_judge.py --calibrate`): the threshold that lets
# the most tuning properties reach ≥ 80% agreement on decided samples with ≥ 85% coverage, then the one with the
# lowest cost when a wrong answer costs five abstentions (decide only where ≥ 80% are expected right).
EMBEDDING_MIN_MARGIN = 0.0126  # cosine points between the best and the second value
# Sentiment-like properties: VADER's compound over the whole text, its per-sentence extremes, and three cue
# families (English): complaint evidence (persistence, non-delivery, faults, money back), requests/questions and
# contrast ("but", "though"). The rule, first match wins:
#   positive  no complaint cue, no sentence below -SENTENCE_FLOOR, compound >= POSITIVE_MIN
#   negative  compound <= -NEGATIVE_MIN, or a complaint cue and no sentence above SENTENCE_CEILING
#   neutral   no complaint cue and either a request cue with |compound| < REQUEST_BAND, or a contrast cue with
#             |compound| < CONTRAST_BAND (a mixed, lukewarm text)
#   otherwise undecided.
# Calibrated on the tuning rows (`--calibrate`): VADER alone reads facts stated without emotive words ("the box
# arrived crushed") as neutral and polite requests ("I'd like ..., please") as positive; the cues fix both.
POSITIVE_MIN = 0.4
NEGATIVE_MIN = 0.3
SENTENCE_FLOOR = 0.2
SENTENCE_CEILING = 0.5
REQUEST_BAND = 0.3
CONTRAST_BAND = 0.45
# Topical properties: a second opinion. The winner must also win once each value's score is debiased by its
# similarity to the property description itself (a prototype close to any text of the domain, like "a sweet dish
# eaten after the meal" for recipes, otherwise wins everywhere): DEBIAS_WEIGHT x (prototype . description).
DEBIAS_WEIGHT = 0.25
# Below this share of words the tokenizer knows, the text is treated as unreadable (gibberish, another script).
MIN_KNOWN_WORD_SHARE = 0.25

SENTIMENT_VALUES = frozenset({"positive", "negative", "neutral"})
_WORD = re.compile(r"[A-Za-z]{2,}")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_COMPLAINT = re.compile(
    r"\b(still|again|never|yet to|hasn'?t|haven'?t|didn'?t|doesn'?t work|won'?t|stopped|broke|broken|faulty|refund"
    r"|money back|returned it|returning|waste|disappointed|letdown|let down|too (small|big|tight|loose|long|short))\b",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\?|\b(could|can|would|will) you\b|\bi'?d like\b|\bi would like\b|\bplease\b|\bhow (do|can|should) i\b"
    r"|\bquestion\b|\bwondering\b",
    re.IGNORECASE,
)
_CONTRAST = re.compile(r"\b(but|though|although|however)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Judgement:
    value: str | None  # None = abstained (undecided)
    margin: float  # best minus second-best score, on the scale the threshold uses
    # "embeddings", "lexicon", "taught" (centroids of human labels), "declined" (by the evaluation's plan), or
    # "none" when the text gave nothing to judge
    method: str
    # One short factual line on how it decided (or why not), shown beside the value on the sample page.
    rationale: str = ""


class _Models:
    """The loaded models: token embedding matrix, tokenizer and sentiment lexicon."""

    def __init__(self) -> None:
        import wordllama
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        from wordllama import WordLlama

        # The wheel ships the weights and the tokenizer config in its own folder; wordllama looks there first.
        # disable_download forbids the hub, and cache_dir = that folder keeps it from creating ~/.cache/wordllama.
        package = Path(wordllama.__file__).resolve().parent
        for needed in (
            package / "weights" / f"{WORDLLAMA_CONFIG}_{WORDLLAMA_DIM}.safetensors",
            package / "tokenizers" / f"{WORDLLAMA_CONFIG}_tokenizer_config.json",
        ):
            # Checked here because a missing tokenizer file would make wordllama fall back to the hub.
            if not needed.is_file():
                raise FileNotFoundError(f"the wordllama wheel should ship {needed}; reinstall the locked version")
        model = WordLlama.load(
            WORDLLAMA_CONFIG, dim=WORDLLAMA_DIM, disable_download=True, cache_dir=package, binary=False
        )
        self.embedding: NDArray[np.float32] = np.ascontiguousarray(model.embedding, dtype=np.float32)
        self.tokenizer: Tokenizer = model.tokenizer
        self.vader: SentimentIntensityAnalyzer = SentimentIntensityAnalyzer()

    def embed(self, text: str) -> NDArray[np.float32] | None:
        """Mean of the token vectors, unit length; None when there is no token."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if not ids:
            return None
        vector = self.embedding[np.clip(ids, 0, len(self.embedding) - 1)].mean(axis=0)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else None

    def known_word_share(self, text: str) -> float:
        """Share of alphabetic words that are whole tokens of the Llama vocabulary (real words mostly are)."""
        words = _WORD.findall(text)
        if not words:
            return 0.0
        known = sum(
            self.tokenizer.token_to_id("▁" + w.lower()) is not None or self.tokenizer.token_to_id("▁" + w) is not None
            for w in words
        )
        return known / len(words)


_models: _Models | None = None
_lock = threading.Lock()


def models() -> _Models:
    """The process's models, loaded on first use (double-checked so concurrent first calls load once)."""
    global _models
    if _models is None:
        with _lock:
            if _models is None:
                _models = _Models()
    return _models


def is_sentiment_like(values: Sequence[str]) -> bool:
    lowered = {v.lower() for v in values}
    return {"positive", "negative"} <= lowered and lowered <= SENTIMENT_VALUES


def value_clauses(description: str, values: Sequence[str]) -> dict[str, str]:
    """The clause of the description tied to each value: "a delivery, parcel or courier (shipping)" -> shipping.

    A clause runs from the end of the previous "(value)" (or the last colon before the first one) to "(value)".
    """
    markers = [description.find(f"({v})") for v in values if f"({v})" in description]
    if not markers:
        return {}
    start = description.rfind(":", 0, min(markers)) + 1
    clauses: dict[str, str] = {}
    pattern = r"\((" + "|".join(re.escape(v) for v in values) + r")\)"
    for match in re.finditer(pattern, description):
        clause = description[start : match.start()].strip(" ,;.")
        clauses[match.group(1)] = re.sub(r"^(or|and)\s+", "", clause)
        start = match.end()
    return clauses


def prototype_texts(name: str, values: Sequence[str], description: str) -> list[str]:
    clauses = value_clauses(description, values)
    # Measured on the tuning split: name + property + own clause beats adding the whole description, which
    # pulls every prototype towards the same text.
    return [f"{v.replace('_', ' ')} {name.replace('_', ' ')}: {clauses.get(v, '')}".strip(" :") for v in values]


def prototypes(prop: PropertyLike) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(one unit prototype per value, each prototype's similarity to the description), cached per property."""
    return _prototypes(prop.name, tuple(prop.values), prop.description or "")


@lru_cache(maxsize=256)
def _prototypes(
    name: str, values: tuple[str, ...], description: str
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(one unit prototype per value, each prototype's similarity to the description: the second opinion's bias)."""
    loaded = models()
    zero = np.zeros(loaded.embedding.shape[1], dtype=np.float32)
    rows = []
    for text in prototype_texts(name, values, description):
        vector = loaded.embed(text)
        rows.append(vector if vector is not None else zero)
    matrix = np.stack(rows)
    reference = loaded.embed(description or name.replace("_", " "))
    return matrix, matrix @ (reference if reference is not None else zero)


def _decide(values: Sequence[str], scores: Sequence[float], min_margin: float, method: str) -> Judgement:
    order = sorted(range(len(values)), key=lambda i: (-scores[i], i))
    best = order[0]
    margin = float(scores[best] - scores[order[1]]) if len(order) > 1 else float("inf")
    runner_up = order[1] if len(order) > 1 else best
    scores_text = f"{values[best]!r} {scores[best]:.3f}, runner-up {values[runner_up]!r} {scores[runner_up]:.3f}"
    if margin >= min_margin:
        rationale = f"{method}: best {scores_text} (margin {margin:.3f} ≥ {min_margin})"
        return Judgement(value=values[best], margin=round(margin, 6), method=method, rationale=rationale)
    rationale = f"undecided: margin {margin:.3f} < {min_margin} ({scores_text})"
    return Judgement(value=None, margin=round(margin, 6), method=method, rationale=rationale)


def _judge_sentiment(vader: SentimentIntensityAnalyzer, text: str, values: Sequence[str]) -> Judgement:
    """The rule in the constants' comment; margin = how far the deciding score is past its threshold."""
    by_name = {v.lower(): v for v in values}
    compound = float(vader.polarity_scores(text)["compound"])
    sentences = [vader.polarity_scores(s)["compound"] for s in _SENTENCE.split(text) if s.strip()] or [compound]
    complaint = _COMPLAINT.search(text) is not None
    decided: tuple[str, float] | None = None
    if not complaint and min(sentences) > -SENTENCE_FLOOR and compound >= POSITIVE_MIN:
        decided = ("positive", compound - POSITIVE_MIN)
    elif compound <= -NEGATIVE_MIN:
        decided = ("negative", -compound - NEGATIVE_MIN)
    elif complaint and max(sentences) < SENTENCE_CEILING:
        decided = ("negative", SENTENCE_CEILING - max(sentences))
    elif not complaint and _REQUEST.search(text) and abs(compound) < REQUEST_BAND:
        decided = ("neutral", REQUEST_BAND - abs(compound))
    elif not complaint and _CONTRAST.search(text) and abs(compound) < CONTRAST_BAND:
        decided = ("neutral", CONTRAST_BAND - abs(compound))
    cues = f"compound {compound:+.2f}, sentences {min(sentences):+.2f}..{max(sentences):+.2f}" + (
        ", complaint cue" if complaint else ""
    )
    if decided is None or decided[0] not in by_name:
        return Judgement(value=None, margin=0.0, method="lexicon", rationale=f"undecided: no rule fits ({cues})")
    rationale = f"lexicon: {decided[0]} ({cues}; {decided[1]:.2f} past the threshold)"
    return Judgement(value=by_name[decided[0]], margin=round(decided[1], 6), method="lexicon", rationale=rationale)


def _judge_embeddings(vector: NDArray[np.float32], prop: PropertyLike) -> Judgement:
    matrix, bias = prototypes(prop)
    scores = matrix @ vector
    judged = _decide(list(prop.values), scores.tolist(), EMBEDDING_MIN_MARGIN, "embeddings")
    second = int(np.argmax(scores - DEBIAS_WEIGHT * bias))
    if judged.value is not None and prop.values[second] != judged.value:
        # The two opinions disagree.
        rationale = (
            f"undecided: {judged.value!r} leads by {judged.margin:.3f}, but {prop.values[second]!r} wins once "
            "scores are debiased for the property description"
        )
        return Judgement(value=None, margin=judged.margin, method="embeddings", rationale=rationale)
    return judged


def _judge_taught(vector: NDArray[np.float32], prop: PropertyLike, entry: Mapping[str, Any]) -> Judgement:
    """Nearest centroid of the human-labelled samples (llm/embedded_plan.py), at the margin chosen on them."""
    scores = np.asarray(entry["centroids"], dtype=np.float32) @ vector
    return _decide(list(prop.values), scores.tolist(), float(entry["min_margin"]), "taught")


def _judge(text: str, vector: NDArray[np.float32], prop: PropertyLike, entry: Mapping[str, Any] | None) -> Judgement:
    mode = entry["mode"] if entry is not None else None
    if len(prop.values) < 2:
        return Judgement(None, 0.0, "none", "undecided: fewer than two values to choose from")
    if mode == "declined":
        assert entry is not None
        return Judgement(None, 0.0, "declined", f"declined for this evaluation: {entry['reason']}")
    if mode == "taught":
        assert entry is not None
        return _judge_taught(vector, prop, entry)
    if mode == "lexicon" or (mode is None and is_sentiment_like(prop.values)):
        return _judge_sentiment(models().vader, text, list(prop.values))
    return _judge_embeddings(vector, prop)


def classify(
    text: str, properties: Sequence[PropertyLike], plan: Mapping[str, Any] | None = None
) -> dict[str, Judgement]:
    """Judge every property of one sample; value None where the judge abstains.

    `plan`: the evaluation's plan (llm/embedded_plan.py): per property, how to judge it or that it is declined.
    Without one (run generation's filter, a single text) each property is judged sample by sample.
    """
    if not properties:
        return {}
    loaded = models()
    share = loaded.known_word_share(text)
    if share < MIN_KNOWN_WORD_SHARE:
        why = f"undecided: {share:.0%} of the words are known (below {MIN_KNOWN_WORD_SHARE:.0%})"
        return {p.name: Judgement(value=None, margin=0.0, method="none", rationale=why) for p in properties}
    vector = loaded.embed(text)
    if vector is None:
        return {p.name: Judgement(None, 0.0, "none", "undecided: no word to judge") for p in properties}
    entries = (plan or {}).get("properties", {})
    return {prop.name: _judge(text, vector, prop, entries.get(prop.name)) for prop in properties}


def judge_property(text: str, prop: PropertyLike, entry: Mapping[str, Any]) -> Judgement:
    """One property of one text under one plan entry (how a plan is measured on labelled texts)."""
    return classify(text, [prop], {"properties": {prop.name: entry}})[prop.name]
