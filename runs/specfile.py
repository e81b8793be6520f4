"""Parse and validate spec YAML (DESIGN.md §4). Every error names the line it is about; nothing is partial.

Over 400 lines on purpose: the YAML pass and the typed checks share the limits and the line-numbering helpers;
split, a limit's two checks would sit apart.

Hostile input is refused in linear time, in two passes: first the YAML event stream (sizes, nesting, no
anchors or aliases), then the typed checks on the constructed document. The limits are settings (SPEC_MAX_*).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml
from django.conf import settings

from config.text import unstorable

DISTRIBUTION_TOLERANCE = 0.5  # percentage points a distribution may miss 100 by (rounding in hand-written YAML)


class SpecError(ValueError):
    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass(frozen=True)
class Property:
    name: str
    values: list[str]
    base_distribution: dict[str, float]
    description: str = ""
    # {conditioning property: {its value: {value: percent}}}
    conditional_distributions: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @cached_property
    def value_set(self) -> frozenset[str]:
        """For membership tests in O(1): a spec may have 1,000 values per property."""
        return frozenset(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "values": self.values,
            "base_distribution": self.base_distribution,
            "description": self.description,
            "conditional_distributions": self.conditional_distributions,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Property:
        values = list(data["values"])

        def ordered(dist: dict[str, float]) -> dict[str, float]:
            # PostgreSQL's jsonb does not keep key order; the spec's value order is the one to show.
            return {v: dist[v] for v in values if v in dist}

        return cls(
            name=data["name"],
            values=values,
            base_distribution=ordered(data["base_distribution"]),
            description=data.get("description", ""),
            conditional_distributions={
                parent: {parent_value: ordered(dist) for parent_value, dist in by_value.items()}
                for parent, by_value in data.get("conditional_distributions", {}).items()
            },
        )


@dataclass(frozen=True)
class ParsedSpec:
    description: str
    requirements: str
    properties: list[Property]


# --- A loader that remembers line numbers and does not turn `yes`/`no`/`on`/`off` into booleans ---


class _Map(dict):  # type: ignore[type-arg]
    line: int
    key_lines: dict[str, int]


class _Seq(list):  # type: ignore[type-arg]
    line: int
    item_lines: list[int]


# libyaml parses in C and keeps its own stack: a 40,000-value list or a deeply nested flow is refused in
# milliseconds, and no nesting can exhaust Python's recursion limit before the depth check has run.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = key if isinstance(key, str) else str(key)
        line = key_node.start_mark.line + 1
        if key in result:
            raise SpecError(f"duplicate key '{key}'", line)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _line(container: Any, key: str | None = None) -> int | None:
    if key is not None and isinstance(container, _Map):
        return container.key_lines.get(key, container.line)
    return getattr(container, "line", None)


def _pick(item: _Map, *names: str) -> tuple[str | None, Any]:
    for name in names:
        if name in item:
            return name, item[name]
    return None, None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def some_values(values: list[str], shown: int = 10) -> str:
    """The first few values, for an error message that stays short however long the list is."""
    more = len(values) - shown
    return f"{values[:shown]}" if more <= 0 else f"{values[:shown]} and {more} more"


class _Cells:
    """How many distribution entries the spec may still expand to: a one-line distribution of a 1,000-value
    property is stored as 1,000 numbers, so the stored size is bounded here, not by the YAML's size."""

    def __init__(self) -> None:
        self.left = settings.SPEC_MAX_PROPERTIES * settings.SPEC_MAX_VALUES_PER_PROPERTY

    def take(self, count: int, line: int | None) -> None:
        self.left -= count
        if self.left < 0:
            raise SpecError(
                "the spec's distributions expand to more than "
                f"{settings.SPEC_MAX_PROPERTIES * settings.SPEC_MAX_VALUES_PER_PROPERTY:,} numbers",
                line,
            )


def _percent(value: Any) -> float | None:
    """A finite number from 0 to 100, or None (NaN, infinities, booleans, text and huge integers are not)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and 0 <= number <= 100 else None


def _distribution(raw: Any, values: list[str], where: str, line: int | None, cells: _Cells) -> dict[str, float]:
    if not isinstance(raw, _Map):
        raise SpecError(f"{where} must be a mapping of value: percent", line)
    cells.take(len(values), line)
    result = dict.fromkeys(values, 0.0)
    for key, percent in raw.items():
        key_line = _line(raw, key)
        if key not in result:
            raise SpecError(f"{where} names '{key}', which is not one of {some_values(values)}", key_line)
        number = _percent(percent)
        if number is None:
            shown = repr(percent) if len(repr(percent)) <= 40 else f"{repr(percent)[:40]}..."
            raise SpecError(f"{where}['{key}'] must be a number from 0 to 100, not {shown}", key_line)
        result[key] = number
    total = sum(result.values())
    if abs(total - 100) > DISTRIBUTION_TOLERANCE:
        raise SpecError(f"{where} sums to {total:g}, not 100", line)
    return result


def _uniform(values: list[str]) -> dict[str, float]:
    return {v: round(100 / len(values), 4) for v in values}


def _parse_property(item: Any, index: int, line: int | None, earlier: dict[str, Property], cells: _Cells) -> Property:
    if not isinstance(item, _Map):
        raise SpecError(
            f"property #{index} must be a mapping with property_name and property_values",
            line,
        )
    name_key, name = _pick(item, "property_name", "axis_name")
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"property #{index} needs a property_name", item.line)
    name = name.strip()
    if len(name) > settings.SPEC_MAX_NAME_CHARS:
        raise SpecError(
            f"property #{index}: property_name is longer than {settings.SPEC_MAX_NAME_CHARS} characters",
            _line(item, name_key),
        )
    if '"' in name or "\\" in name:
        # Property names become JSON-path keys in SQL (the sample table's filters); SQLite's JSON paths cannot
        # escape these two characters, so they are refused here rather than silently matching nothing. Any other
        # Unicode works, and property values may hold anything (they are compared as bound parameters).
        raise SpecError(
            f"property #{index}: property_name may not contain a double quote or a backslash", _line(item, name_key)
        )
    if name in earlier:
        raise SpecError(f"duplicate property '{name}'", _line(item, name_key))
    values_key, raw_values = _pick(item, "property_values", "possible_values")
    values_line = _line(item, values_key) if values_key else item.line
    if not isinstance(raw_values, list) or not raw_values:
        raise SpecError(f"property '{name}' needs a non-empty list of property_values", values_line)
    if not all(_is_scalar(v) for v in raw_values):
        raise SpecError(
            f"property '{name}': every property value must be a plain string or number",
            values_line,
        )
    if len(raw_values) > settings.SPEC_MAX_VALUES_PER_PROPERTY:
        raise SpecError(
            f"property '{name}' has {len(raw_values):,} values; the limit is {settings.SPEC_MAX_VALUES_PER_PROPERTY:,}",
            values_line,
        )
    try:
        values = [str(v).strip() for v in raw_values]
    except ValueError:  # an integer too long to print (Python refuses more than 4,300 digits)
        raise SpecError(f"property '{name}': a property value is too long", values_line) from None
    if any(len(v) > settings.SPEC_MAX_NAME_CHARS for v in values):
        raise SpecError(
            f"property '{name}': a property value is longer than {settings.SPEC_MAX_NAME_CHARS} characters",
            values_line,
        )
    # Counted in one pass: `values.count(v)` per value was quadratic (40,000 values took minutes).
    duplicates = sorted(v for v, seen in Counter(values).items() if seen > 1)
    if duplicates or "" in values:
        problem = f"repeats {some_values(duplicates)}" if duplicates else "has an empty value"
        raise SpecError(f"property '{name}': property_values {problem}", values_line)

    raw_base = item.get("base_distributions")
    base = (
        _uniform(values)
        if raw_base is None
        else _distribution(
            raw_base,
            values,
            f"base_distributions of '{name}'",
            _line(item, "base_distributions"),
            cells,
        )
    )
    description = _text(item, "property_description", "description", where=f"property_description of '{name}'")

    conditional: dict[str, dict[str, dict[str, float]]] = {}
    raw_conditional = item.get("conditional_distributions")
    if raw_conditional is not None:
        cond_line = _line(item, "conditional_distributions")
        if not isinstance(raw_conditional, _Map):
            raise SpecError(f"conditional_distributions of '{name}' must be a mapping", cond_line)
        for parent_name, by_value in raw_conditional.items():
            parent_line = _line(raw_conditional, parent_name)
            parent = earlier.get(parent_name)
            if parent is None:
                raise SpecError(
                    f"'{name}' is conditioned on '{parent_name}', which is not a property defined before it",
                    parent_line,
                )
            if not isinstance(by_value, _Map):
                raise SpecError(
                    f"conditional_distributions of '{name}' on '{parent_name}' must be a mapping",
                    parent_line,
                )
            conditional[parent_name] = {}
            for parent_value, dist in by_value.items():
                if parent_value not in parent.value_set:
                    raise SpecError(
                        f"'{parent_value}' is not a value of '{parent_name}' (one of {some_values(parent.values)})",
                        _line(by_value, parent_value),
                    )
                where = f"distribution of '{name}' when {parent_name} is '{parent_value}'"
                conditional[parent_name][parent_value] = _distribution(
                    dist, values, where, _line(by_value, parent_value), cells
                )
    return Property(name, values, base, description, conditional)


def _text(container: _Map, *keys: str, where: str) -> str:
    """Optional free text (a number is taken as text); anything else, or too long, is refused."""
    key, value = _pick(container, *keys)
    if key is None or value is None or value == "":
        return ""
    if not _is_scalar(value):
        raise SpecError(f"{where} must be text", _line(container, key))
    text = value.strip() if isinstance(value, str) else str(value)
    if len(text) > settings.SPEC_MAX_TEXT_CHARS:
        raise SpecError(f"{where} is longer than {settings.SPEC_MAX_TEXT_CHARS:,} characters", _line(container, key))
    return text


def _check_events(text: str) -> None:
    """Refuse, before building anything, what would make the document big or slow: anchors and aliases (a few
    hundred bytes of them expand to gigabytes), nesting deeper than SPEC_MAX_DEPTH, a list or mapping longer than
    any limit allows, scalars longer than SPEC_MAX_TEXT_CHARS and scalars a database cannot store. One pass over libyaml's events: linear."""
    widest = max(settings.SPEC_MAX_VALUES_PER_PROPERTY, settings.SPEC_MAX_PROPERTIES)
    # One entry per open list or mapping: [children so far, whether it is a mapping, its line].
    open_nodes: list[list[Any]] = []
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise SpecError("YAML anchors (&name) and aliases (*name) are not allowed: write the values out", line)
        if isinstance(event, yaml.NodeEvent) and open_nodes:
            top = open_nodes[-1]
            top[0] += 1
            if top[0] > widest * (2 if top[1] else 1):
                kind = "mapping has more than" if top[1] else "list has more than"
                raise SpecError(
                    f"this {kind} {widest:,} entries (limits: {settings.SPEC_MAX_VALUES_PER_PROPERTY:,} values per "
                    f"property, {settings.SPEC_MAX_PROPERTIES:,} properties)",
                    top[2],
                )
        if isinstance(event, yaml.ScalarEvent):
            if len(event.value) > settings.SPEC_MAX_TEXT_CHARS:
                raise SpecError(f"a value is longer than {settings.SPEC_MAX_TEXT_CHARS:,} characters", line)
            # Escapes such as "\0" decode to text PostgreSQL cannot store (keys are scalars too).
            reason = unstorable(event.value)
            if reason:
                raise SpecError(f"the value {event.value[:100]!r} {reason}", line)
        if isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append([0, isinstance(event, yaml.MappingStartEvent), line])
            if len(open_nodes) > settings.SPEC_MAX_DEPTH:
                raise SpecError(f"the YAML is nested more than {settings.SPEC_MAX_DEPTH} levels deep", line)
        elif isinstance(event, yaml.CollectionEndEvent):
            open_nodes.pop()


def parse_spec(text: str) -> ParsedSpec:
    """Parse spec YAML, new layout (`spec:`) or legacy (`specification:`, `axis_name`, `possible_values`)."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("the spec YAML is empty")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise SpecError("the spec YAML is not valid Unicode text (it has a lone surrogate)") from None
    if size > settings.SPEC_MAX_BYTES:
        raise SpecError(f"the spec YAML is {size:,} bytes; the limit is {settings.SPEC_MAX_BYTES:,}")
    try:
        _check_events(text)
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        # libyaml places an error at the end of the input one line past the last one; name the last line.
        line = min(mark.line + 1, len(text.splitlines()) or 1) if mark else None
        raise SpecError(f"invalid YAML: {problem}", line) from None
    except (ValueError, OverflowError) as exc:
        # A scalar the safe constructors cannot build, e.g. `!!timestamp 0000-01-01` or a 5,000-digit integer.
        raise SpecError(f"invalid YAML: {exc}") from None
    if not isinstance(document, _Map):
        raise SpecError("the spec must be a mapping with a 'spec:' root", 1)
    root_key, root = _pick(document, "spec", "specification")
    if root_key is None:
        raise SpecError("the spec must have a 'spec:' root key", 1)
    if not isinstance(root, _Map):
        raise SpecError(f"'{root_key}' must be a mapping", _line(document, root_key))
    list_key, items = _pick(root, "data_property_variations", "axes", "properties")
    if list_key is None:
        raise SpecError("the spec needs a data_property_variations list", root.line)
    if not isinstance(items, _Seq) or not items:
        raise SpecError(
            f"'{list_key}' must be a non-empty list of properties",
            _line(root, list_key),
        )

    if len(items) > settings.SPEC_MAX_PROPERTIES:
        raise SpecError(
            f"the spec has {len(items):,} properties; the limit is {settings.SPEC_MAX_PROPERTIES:,}",
            _line(root, list_key),
        )

    properties: dict[str, Property] = {}
    cells = _Cells()
    for index, (item, line) in enumerate(zip(items, items.item_lines, strict=True), start=1):
        prop = _parse_property(item, index, line, properties, cells)
        properties[prop.name] = prop
    # A description that is a list or mapping was once turned into its str(): refuse it instead.
    description = _text(root, "description", where="description")
    requirements = _text(root, "requirements", where="requirements")
    return ParsedSpec(description, requirements, list(properties.values()))
