"""Untrusted text in prompts (samples, model inputs and outputs): each block is fenced by tags that the text inside
cannot close. A closing tag inside the text would end its block early and let the text speak as us."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache


@cache
def _closing_tags(tags: tuple[str, ...]) -> re.Pattern[str]:
    # Case and whitespace insensitive: `</SAMPLE>`, `< / sample >` and `</sample foo>` all read as closing tags.
    names = "|".join(re.escape(tag) for tag in tags)
    return re.compile(r"<\s*/\s*(" + names + r")\b", re.IGNORECASE)


def neutralise(text: str, tags: Iterable[str]) -> str:
    """`text` with every closing tag of `tags` made inert (`</sample>` becomes `<\\/sample>`)."""
    return _closing_tags(tuple(tags)).sub(lambda m: "<\\/" + m.group(1), text)


def fenced(tag: str, text: str, *, also: Iterable[str] = ()) -> str:
    """`text` between <tag> and </tag>, with closing tags of `tag` and of the enclosing blocks (`also`) made inert."""
    return f"<{tag}>\n{neutralise(text, (tag, *also))}\n</{tag}>"
