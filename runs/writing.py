"""The run generation task: the prompt and answer schema that have an LLM write one sample for its assigned
values (one call per sample). The spec part is identical for every sample of a run, so it goes in `system`, which
the providers mark for prompt caching; only the sample's own values go in `user`."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.utils.text import slugify

from llm.base import BadReply, StructuredRequest

from .specfile import ParsedSpec

PROMPT_VERSION = "write-v1"

SYSTEM_TEMPLATE = """\
You write synthetic data samples for a dataset, one sample per request. Each request gives the property values \
this sample must have; the sample must clearly and naturally have exactly those values, so that a careful reader \
classifying it would pick them. Vary everything the properties do not fix (names, details, wording, length within \
reason), so that samples do not read as copies of one another. Write only the sample itself, with no commentary \
about the task, in `content`, and a short title of a few words in `title`.

Dataset: {description}
Requirements every sample meets: {requirements}

Properties (each request assigns one value of each):
{properties}
"""

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "A short title of the sample, a few words."},
        "content": {"type": "string", "description": "The sample itself."},
    },
    "required": ["title", "content"],
    "additionalProperties": False,
}


def system_prompt(spec: ParsedSpec) -> str:
    lines = []
    for prop in spec.properties:
        about = f" — {prop.description}" if prop.description else ""
        lines.append(f"- {prop.name}{about}\n  values: {', '.join(json.dumps(v) for v in prop.values)}")
    return SYSTEM_TEMPLATE.format(
        description=spec.description or "(not given)",
        requirements=spec.requirements or "(not given)",
        properties="\n".join(lines),
    )


def write_request(*, system: str, assigned: dict[str, str], feedback: str = "") -> StructuredRequest:
    """One sample's request. `feedback` says how the previous attempt missed its values (conformance filter)."""
    user = "Write one sample with these property values:\n" + json.dumps(assigned, indent=1, ensure_ascii=False)
    if feedback:
        user += f"\n\nA previous attempt was rejected: {feedback}. Make these values unmistakable."
    return StructuredRequest(
        purpose="generate",
        system=system,
        user=user,
        schema=ANSWER_SCHEMA,
        tool_name="record_sample",
        tool_description="Record the written sample and its title.",
    )


def validate_answer(data: Any) -> dict[str, str]:
    """The schema again, on our side, plus a size limit: an empty or runaway sample is a bad reply (asked again)."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), str):
        raise BadReply("expected an object with a string `content`")
    content = data["content"].strip()
    if not content:
        raise BadReply("the sample is empty")
    if len(content) > settings.GENERATION_MAX_SAMPLE_CHARS:
        raise BadReply(f"the sample is longer than {settings.GENERATION_MAX_SAMPLE_CHARS:,} characters")
    title = data.get("title")
    return {"content": content, "title": title.strip() if isinstance(title, str) else ""}


def identifier_for(position: int) -> str:
    """Fixed by the position alone, never by the reply: a position written twice (a retry after a kill) hits the
    (run, identifier) unique constraint instead of becoming a second sample."""
    return f"sample_{position + 1:05d}"


def path_for(position: int, title: str) -> str:
    """`sample_00001-late-delivery-refund.txt`: the identifier, then the title made file-name safe (or nothing)."""
    slug = slugify(title)[:60].strip("-")
    return f"{identifier_for(position)}-{slug}.txt" if slug else f"{identifier_for(position)}.txt"
