"""The judge engine shared by every kind of evaluation: a catalog of models, providers behind one interface,
retries with backoff and a ledger of every call, and the embedded judge for when no provider is configured."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings

from .base import FatalJudgeError
from .catalog import OFFLINE_MODEL, PROVIDER_KEY_ENV, JudgeModel, UnknownModel, get_judge_model
from .engine import Judge
from .providers import provider_for


@dataclass(frozen=True)
class ResolvedJudge:
    judge: Judge
    requested: str
    fallback_reason: str

    @property
    def model(self) -> JudgeModel:
        return self.judge.model


def resolve_judge(requested: str) -> ResolvedJudge:
    """The judge for a requested model name; offline when its provider has no credentials and fallback is on."""
    model = get_judge_model(requested)
    reason = ""
    if model.api_key() is None:
        env = model.api_key_env or PROVIDER_KEY_ENV[model.provider]
        if not settings.JUDGE_OFFLINE_FALLBACK:
            raise FatalJudgeError(f"No credentials for {requested}: set {env} (or choose another evaluation model).")
        reason = f"{env} is not set, so the embedded judge (local/embeddings, no LLM) judged instead of {requested}"
        model = get_judge_model(OFFLINE_MODEL)
    return ResolvedJudge(Judge(model, provider_for(model)), requested, reason)


class NoWriter(ValueError):
    """No LLM can write data: the model is unknown, is the embedded judge, or its provider has no credentials."""


WRITER_HELP = (
    "Generating data needs an LLM: start the service with ANTHROPIC_API_KEY=... or OPENAI_API_KEY=..., or point "
    "JUDGE_MODELS_FILE at an OpenAI-compatible server (vLLM, Ollama, llama.cpp) and name that model. The embedded "
    "judge (local/embeddings) only judges; it does not write data."
)


def resolve_writer(requested: str) -> Judge:
    """The LLM that writes specs and samples for a requested model name. Never the embedded judge, never a fallback:
    data written by a model other than the one asked for would be silently wrong."""
    try:
        model = get_judge_model(requested)
    except UnknownModel as exc:
        raise NoWriter(str(exc)) from exc
    if model.is_offline:
        raise NoWriter(f"{requested} cannot write data. {WRITER_HELP}")
    if model.api_key() is None:
        env = model.api_key_env or PROVIDER_KEY_ENV[model.provider]
        raise NoWriter(f"No credentials for {requested}: {env} is not set. {WRITER_HELP}")
    return Judge(model, provider_for(model))


def with_budget(judge: Judge, max_tokens: int) -> Judge:
    """The same judge with room for at least `max_tokens` of reply (a long answer, several answers in one)."""
    if judge.model.is_offline or judge.model.max_tokens >= max_tokens:
        return judge
    model = replace(judge.model, max_tokens=max_tokens)
    return Judge(model, provider_for(model))
