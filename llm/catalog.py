"""The judge models operators can choose: names → provider, provider model id, thinking, prices (settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

PROVIDERS = {"anthropic", "openai", "offline"}
OFFLINE_MODEL = "local/embeddings"  # the embedded judge: what "offline" means everywhere in this app
# Model names that once meant the offline judge: results they gave are still marked as not from an LLM.
OFFLINE_NAMES = {OFFLINE_MODEL, "offline/heuristic"}
SWITCH_TO_LLM = (
    "For an LLM judge, start the service with ANTHROPIC_API_KEY=... (or OPENAI_API_KEY=...), or point "
    "JUDGE_MODELS_FILE at an OpenAI-compatible server, and pick that model."
)


def is_offline_name(name: str | None) -> bool:
    return (name or "") in OFFLINE_NAMES


# Environment variables holding each provider's default credentials and base URL.
PROVIDER_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
PROVIDER_BASE_URL_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}


class UnknownModel(ValueError):
    pass


@dataclass(frozen=True)
class Prices:
    """USD per million tokens."""

    input: Decimal = Decimal(0)
    output: Decimal = Decimal(0)
    cache_read: Decimal = Decimal(0)
    cache_write: Decimal = Decimal(0)

    def scaled(self, factor: Decimal) -> Prices:
        return Prices(*(price * factor for price in (self.input, self.output, self.cache_read, self.cache_write)))

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read: int,
        cache_write: int,
    ) -> Decimal:
        total = (
            self.input * input_tokens
            + self.output * output_tokens
            + self.cache_read * cache_read
            + self.cache_write * cache_write
        )
        return total / Decimal(1_000_000)


@dataclass(frozen=True)
class JudgeModel:
    name: str
    provider: str
    model: str
    thinking_budget: int | None = None
    reasoning_effort: str | None = None
    prices: Prices = field(default_factory=Prices)
    base_url: str | None = None
    api_key_env: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    # The provider's batch API takes this model (Anthropic Message Batches, OpenAI Batch API), and what it bills
    # there as a share of the interactive prices (both: half).
    batch: bool = False
    batch_discount: Decimal = Decimal("0.5")

    @property
    def is_offline(self) -> bool:
        return self.provider == "offline"

    @property
    def batch_prices(self) -> Prices:
        return self.prices.scaled(self.batch_discount)

    @property
    def thinks(self) -> bool:
        return bool(self.thinking_budget or self.reasoning_effort)

    def api_key(self) -> str | None:
        """The credential this model's provider needs, or None if it is not configured."""
        if self.is_offline:
            return "offline"
        env = self.api_key_env or PROVIDER_KEY_ENV[self.provider]
        key = os.environ.get(env, "")
        if key:
            return key
        # A self-hosted OpenAI-compatible server (vLLM, Ollama, llama.cpp) often needs no key at all.
        if self.base_url and not self.api_key_env:
            return "not-needed"
        return None

    def resolved_base_url(self) -> str | None:
        if self.base_url:
            return self.base_url
        return os.environ.get(PROVIDER_BASE_URL_ENV.get(self.provider, ""), "") or None


def _build(name: str, entry: dict[str, Any]) -> JudgeModel:
    provider = entry.get("provider")
    if provider not in PROVIDERS:
        raise ValueError(f"judge model {name!r}: provider must be one of {sorted(PROVIDERS)}, not {provider!r}")
    prices = {k: Decimal(str(v)) for k, v in (entry.get("prices") or {}).items()}
    return JudgeModel(
        name=name,
        provider=provider,
        model=entry.get("model", name.split("/", 1)[-1]),
        thinking_budget=entry.get("thinking_budget"),
        reasoning_effort=entry.get("reasoning_effort"),
        prices=Prices(**prices),
        base_url=entry.get("base_url"),
        api_key_env=entry.get("api_key_env"),
        max_tokens=int(entry.get("max_tokens", 1024)),
        temperature=entry.get("temperature"),
        # Both providers' own APIs have a batch API; an OpenAI-compatible server (a base_url) says so itself.
        batch=bool(entry.get("batch", provider in {"anthropic", "openai"} and not entry.get("base_url"))),
        batch_discount=Decimal(str(entry.get("batch_discount", "0.5"))),
    )


def judge_models() -> dict[str, JudgeModel]:
    return {name: _build(name, entry) for name, entry in settings.JUDGE_MODELS.items()}


def picker_choices(*, writers: bool = False) -> list[tuple[str, str]]:
    """Every model picker's (name, label) pairs: a model whose provider has no credentials says so, so that nobody
    picks it to learn that from an error. `writers`: only models that write data (not the embedded judge)."""
    choices = []
    for name, model in sorted(judge_models().items()):
        if model.is_offline:
            if writers:
                continue
            label = f"{name} (embedded judge: no LLM)"
        elif model.api_key() is None:
            fallback = not writers and settings.JUDGE_OFFLINE_FALLBACK
            label = f"{name} (no credentials: embedded judge instead)" if fallback else f"{name} (no credentials)"
        else:
            label = name
        choices.append((name, label))
    return choices


def get_judge_model(name: str) -> JudgeModel:
    models = judge_models()
    if name not in models:
        raise UnknownModel(f"Unknown evaluation model {name!r}. Allowed: {', '.join(sorted(models))}.")
    return models[name]
