"""The embedded judge: classifies samples offline with small models that ship inside PyPI wheels (DESIGN.md §5).

- Topical properties: `wordllama`'s static token embeddings (l2_supercat, 256 dimensions, 16 MB, inside the wheel).
  A sample's mean-pooled embedding is compared by cosine with one prototype per value, built from the value's name,
  the property's name and the clause of the description tied to that value ("a delivery or courier (shipping)").
- Sentiment-like properties (values among positive / negative / neutral): the VADER lexicon's compound score, which
  the embeddings cannot capture (they put "great" and "terrible" close together).

Either way the judge abstains (value None) when the margin between the best and the second-best value is below a
threshold calibrated on the tuning split of `benchmarks/fixtures/embedded_judge/` (see
`benchmarks/embedded_judge.py --calibrate`). It never falls back to a default value.

Pure Python + numpy: no Django, no network. The models load once per process, lazily, under a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

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
EMBEDDING_MIN_MARGIN = 0.0262  # cosine points between the best and the second value
# VADER compound in [-1, 1]: |compound| below NEUTRAL_BAND reads as neutral; margin = distance to that boundary.
# On the tuning rows no setting reaches 80% agreement at useful coverage, so the cost rule leaves only strongly
# worded texts decided (|compound| >= 0.48) and "neutral" is never decided: that is the honest calibration.
LEXICON_NEUTRAL_BAND = 0.05
LEXICON_MIN_MARGIN = 0.4254
# Below this share of words the tokenizer knows, the text is treated as unreadable (gibberish, another script).
MIN_KNOWN_WORD_SHARE = 0.25

SENTIMENT_VALUES = frozenset({"positive", "negative", "neutral"})
_WORD = re.compile(r"[A-Za-z]{2,}")


class PropertyLike(Protocol):
    """What the judge needs of a property; `runs.specfile.Property` satisfies it."""

    name: str
    values: list[str]
    description: str


@dataclass(frozen=True)
class Judgement:
    value: str | None  # None = abstained (undecided)
    margin: float  # best minus second-best score, on the scale the threshold uses
    method: str  # "embeddings", "lexicon", or "none" when the text gave nothing to judge


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


@lru_cache(maxsize=256)
def _prototypes(name: str, values: tuple[str, ...], description: str) -> NDArray[np.float32]:
    loaded = models()
    rows = []
    for text in prototype_texts(name, values, description):
        vector = loaded.embed(text)
        rows.append(vector if vector is not None else np.zeros(loaded.embedding.shape[1], dtype=np.float32))
    return np.stack(rows)


def _decide(values: Sequence[str], scores: Sequence[float], min_margin: float, method: str) -> Judgement:
    order = sorted(range(len(values)), key=lambda i: (-scores[i], i))
    best = order[0]
    margin = float(scores[best] - scores[order[1]]) if len(order) > 1 else float("inf")
    return Judgement(value=values[best] if margin >= min_margin else None, margin=round(margin, 6), method=method)


def _judge_lexicon(compound: float, values: Sequence[str]) -> Judgement:
    by_name = {v.lower(): v for v in values}
    # Scores whose best-minus-second is the distance from compound to the nearest decision boundary.
    scores = {"positive": compound - LEXICON_NEUTRAL_BAND, "negative": -compound - LEXICON_NEUTRAL_BAND, "neutral": 0.0}
    if "neutral" not in by_name:
        scores = {"positive": compound, "negative": -compound}
    names = [by_name[k] for k in scores]
    return _decide(names, list(scores.values()), LEXICON_MIN_MARGIN, "lexicon")


def classify(text: str, properties: Sequence[PropertyLike]) -> dict[str, Judgement]:
    """Judge every property of one sample; value None where the judge abstains."""
    if not properties:
        return {}
    loaded = models()
    undecided = {p.name: Judgement(value=None, margin=0.0, method="none") for p in properties}
    if loaded.known_word_share(text) < MIN_KNOWN_WORD_SHARE:
        return undecided
    vector = loaded.embed(text)
    if vector is None:
        return undecided
    compound: float | None = None
    result: dict[str, Judgement] = {}
    for prop in properties:
        values = list(prop.values)
        if len(values) < 2:
            result[prop.name] = Judgement(value=None, margin=0.0, method="none")
        elif is_sentiment_like(values):
            if compound is None:
                compound = float(loaded.vader.polarity_scores(text)["compound"])
            result[prop.name] = _judge_lexicon(compound, values)
        else:
            scores = _prototypes(prop.name, tuple(values), prop.description or "") @ vector
            result[prop.name] = _decide(values, scores.tolist(), EMBEDDING_MIN_MARGIN, "embeddings")
    return result
