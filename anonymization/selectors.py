"""What the anonymization pages show: a file's text cut into plain and entity segments (the template escapes each)."""

from __future__ import annotations

from dataclasses import dataclass

PREVIEW_CHARS = 100_000  # of a file's text on its page; the download has it all


@dataclass(frozen=True)
class Segment:
    text: str
    label: str = ""  # the entity's type; empty for the text between entities
    score: float = 0.0


def segments(text: str, entities: list[list[object]], mask_for: dict[str, str] | None = None) -> list[Segment]:
    """The first PREVIEW_CHARS characters of `text` as segments; with `mask_for`, each entity shows its mask (the
    "after" view) instead of its text (the "before" view)."""
    pieces: list[Segment] = []
    position = 0
    for start, end, label, score in entities:  # stored as [start, end, label, score], in text order
        start, end = int(start), int(end)  # type: ignore[call-overload]
        if start >= PREVIEW_CHARS:
            break
        pieces.append(Segment(text[position:start]))
        shown = mask_for.get(str(label), f"<{str(label).upper()}>") if mask_for is not None else text[start:end]
        pieces.append(Segment(shown, str(label), float(score)))  # type: ignore[arg-type]
        position = end
    pieces.append(Segment(text[position:PREVIEW_CHARS]))
    return pieces
