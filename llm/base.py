"""What every provider speaks: a structured request in, a validated JSON object (and token usage) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class StructuredRequest:
    """One call: a system prompt shared by every call of a job (cacheable), a user turn, and the answer's schema."""

    purpose: str
    system: str
    user: str
    # Empty: a free-text answer, `Reply.data == {"text": ...}` (a red-team target answers as it would a user).
    schema: dict[str, Any]
    tool_name: str = "record_answer"
    tool_description: str = "Record your answer."
    # Provider-free inputs for the offline judge, which reads the task itself rather than a prompt.
    offline_task: Any = None


@dataclass(frozen=True)
class Reply:
    data: dict[str, Any]
    usage: Usage = field(default_factory=Usage)


class JudgeError(Exception):
    """A call that produced no usable answer. `usage` holds tokens spent anyway (billed all the same)."""

    outcome = "fatal"

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()


class TransientError(JudgeError):
    """Worth retrying after a pause: 429, 5xx, timeouts, dropped connections."""

    def __init__(
        self,
        message: str,
        *,
        outcome: str,
        retry_after: float | None = None,
        usage: Usage | None = None,
    ):
        super().__init__(message, usage=usage)
        self.outcome = outcome
        self.retry_after = retry_after


class BadReply(JudgeError):
    """The model answered, but not in the schema: asked again once."""

    outcome = "bad_reply"


class Refused(JudgeError):
    outcome = "refused"


class Rejected(JudgeError):
    """The provider will not take this request (400, 413, 422: too long for the context window, a content filter):
    asking again is pointless, but other requests are fine. The item fails; the job goes on."""

    outcome = "rejected"


class FatalJudgeError(JudgeError):
    """No point going on with this judge at all (bad credentials, unknown model): the evaluation fails."""

    outcome = "fatal"


class PropertyLike(Protocol):
    """A property to classify a text on, as this app sees it (runs.specfile.Property is one)."""

    @property
    def name(self) -> str: ...

    @property
    def values(self) -> list[str]: ...

    @property
    def description(self) -> str: ...


class Provider(Protocol):
    name: str

    def complete(self, request: StructuredRequest) -> Reply: ...
