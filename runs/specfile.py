"""Parse and validate spec YAML (DESIGN.md §4). Every error names the line it is about; nothing is partial."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

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


class _Loader(yaml.SafeLoader):
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


def _distribution(raw: Any, values: list[str], where: str, line: int | None) -> dict[str, float]:
    if not isinstance(raw, _Map):
        raise SpecError(f"{where} must be a mapping of value: percent", line)
    result = dict.fromkeys(values, 0.0)
    for key, percent in raw.items():
        key_line = _line(raw, key)
        if key not in result:
            raise SpecError(f"{where} names '{key}', which is not one of {values}", key_line)
        if not isinstance(percent, int | float) or isinstance(percent, bool) or percent < 0:
            raise SpecError(
                f"{where}['{key}'] must be a number from 0 to 100, not {percent!r}",
                key_line,
            )
        result[key] = float(percent)
    total = sum(result.values())
    if abs(total - 100) > DISTRIBUTION_TOLERANCE:
        raise SpecError(f"{where} sums to {total:g}, not 100", line)
    return result


def _uniform(values: list[str]) -> dict[str, float]:
    return {v: round(100 / len(values), 4) for v in values}


def _parse_property(item: Any, index: int, line: int | None, earlier: dict[str, Property]) -> Property:
    if not isinstance(item, _Map):
        raise SpecError(
            f"property #{index} must be a mapping with property_name and property_values",
            line,
        )
    name_key, name = _pick(item, "property_name", "axis_name")
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"property #{index} needs a property_name", item.line)
    name = name.strip()
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
    values = [str(v).strip() for v in raw_values]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates or "" in values:
        problem = f"repeats {duplicates}" if duplicates else "has an empty value"
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
        )
    )
    description = item.get("property_description") or item.get("description") or ""
    if not isinstance(description, str):
        raise SpecError(
            f"property_description of '{name}' must be text",
            _line(item, "property_description"),
        )

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
                if parent_value not in parent.values:
                    raise SpecError(
                        f"'{parent_value}' is not a value of '{parent_name}' (one of {parent.values})",
                        _line(by_value, parent_value),
                    )
                where = f"distribution of '{name}' when {parent_name} is '{parent_value}'"
                conditional[parent_name][parent_value] = _distribution(
                    dist, values, where, _line(by_value, parent_value)
                )
    return Property(name, values, base, description.strip(), conditional)


def parse_spec(text: str) -> ParsedSpec:
    """Parse spec YAML, new layout (`spec:`) or legacy (`specification:`, `axis_name`, `possible_values`)."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("the spec YAML is empty")
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
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

    properties: dict[str, Property] = {}
    for index, (item, line) in enumerate(zip(items, items.item_lines, strict=True), start=1):
        prop = _parse_property(item, index, line, properties)
        properties[prop.name] = prop
    description = root.get("description") or ""
    requirements = root.get("requirements") or ""
    return ParsedSpec(str(description).strip(), str(requirements).strip(), list(properties.values()))
