from __future__ import annotations

import json

import pytest

from runs.specfile import SpecError, parse_spec
from tests.conftest import SPEC_YAML


def test_it_parses_the_documented_layout() -> None:
    spec = parse_spec(SPEC_YAML)
    assert spec.description == "Customer support conversations"
    assert [p.name for p in spec.properties] == ["sentiment", "priority"]
    sentiment, priority = spec.properties
    assert sentiment.values == ["positive", "negative", "neutral"]
    assert sentiment.base_distribution == {
        "positive": 40,
        "negative": 30,
        "neutral": 30,
    }
    assert sentiment.description == "Overall customer sentiment"
    assert priority.conditional_distributions == {"sentiment": {"negative": {"high": 50, "medium": 40, "low": 10}}}


def test_it_parses_the_legacy_layout_with_uniform_distributions() -> None:
    spec = parse_spec(
        "specification:\n"
        "  data_property_variations:\n"
        "    - axis_name: tone\n"
        "      possible_values: [formal, casual, playful, terse]\n"
        "    - axis_name: answer\n"
        "      possible_values: [yes, no, 3]\n"
    )
    tone, answer = spec.properties
    assert tone.base_distribution == dict.fromkeys(["formal", "casual", "playful", "terse"], 25.0)
    # YAML 1.1 would read yes/no as booleans; a property value is always text.
    assert answer.values == ["yes", "no", "3"]
    assert sum(answer.base_distribution.values()) == pytest.approx(100, abs=0.01)


def prop(body: str, name: str = "a", values: str = "[x, y]") -> str:
    return f"spec:\n  data_property_variations:\n    - property_name: {name}\n      property_values: {values}\n{body}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec: [", "line 1: invalid YAML"),
        ("spec:\n  a: 1\n  a: 2\n", "line 3: duplicate key 'a'"),
        ("- just a list\n", "line 1: the spec must be a mapping"),
        ("other: 1\n", "line 1: the spec must have a 'spec:' root key"),
        (
            "spec:\n  description: nothing\n",
            "line 2: the spec needs a data_property_variations list",
        ),
        (
            "spec:\n  data_property_variations: []\n",
            "line 2: 'data_property_variations' must be a non-empty list",
        ),
        (
            prop("      base_distributions: {x: 10, y: 20}\n"),
            "line 5: base_distributions of 'a' sums to 30, not 100",
        ),
        (
            prop("      base_distributions: {x: 50, z: 50}\n"),
            "line 5: base_distributions of 'a' names 'z', which is not one of ['x', 'y']",
        ),
        (
            prop("      base_distributions: {x: -10, y: 110}\n"),
            "line 5: base_distributions of 'a'['x'] must be a number",
        ),
        (
            prop("", values="[x, x]"),
            "line 4: property 'a': property_values repeats ['x']",
        ),
        (
            prop("", values="[]"),
            "line 4: property 'a' needs a non-empty list of property_values",
        ),
        (
            prop("    - property_name: a\n      property_values: [p, q]\n"),
            "line 5: duplicate property 'a'",
        ),
        (
            prop("      conditional_distributions:\n        b:\n          x: {x: 50, y: 50}\n"),
            "line 6: 'a' is conditioned on 'b', which is not a property defined before it",
        ),
        (
            prop(
                "    - property_name: b\n      property_values: [p, q]\n"
                "      conditional_distributions:\n        a:\n          z: {p: 50, q: 50}\n"
            ),
            "line 9: 'z' is not a value of 'a'",
        ),
        (
            prop(
                "    - property_name: b\n      property_values: [p, q]\n"
                "      conditional_distributions:\n        a:\n          x: {p: 70, q: 50}\n"
            ),
            "line 9: distribution of 'b' when a is 'x' sums to 120, not 100",
        ),
        (
            # Conditioning on a property that only comes later is refused: generation assigns in order.
            "spec:\n  data_property_variations:\n"
            "    - property_name: b\n      property_values: [p, q]\n"
            "      conditional_distributions:\n        a:\n          x: {p: 50, q: 50}\n"
            "    - property_name: a\n      property_values: [x, y]\n",
            "line 6: 'b' is conditioned on 'a', which is not a property defined before it",
        ),
    ],
)
def test_it_names_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(SpecError) as excinfo:
        parse_spec(text)
    assert str(excinfo.value).startswith(message)


def test_it_refuses_an_empty_document() -> None:
    with pytest.raises(SpecError, match="empty"):
        parse_spec("   \n")


@pytest.mark.parametrize("name", ['say "hi"', "back\\\\slash"])
def test_it_refuses_quotes_and_backslashes_in_property_names(name: str) -> None:
    spec = SPEC_WITH_NAME.format(name=json.dumps(name))
    with pytest.raises(SpecError, match="line 3: property #1: property_name may not contain a double quote"):
        parse_spec(spec)


def test_it_accepts_any_other_unicode_in_names_and_anything_in_values() -> None:
    spec = SPEC_WITH_NAME.format(name=json.dumps("ünï ✓ 'quoted' (x)")).replace(
        "[a, b]", json.dumps(['"yes"', "back\\slash"])
    )
    [prop] = parse_spec(spec).properties
    assert prop.values == ['"yes"', "back\\slash"]


SPEC_WITH_NAME = """\
spec:
  data_property_variations:
    - property_name: {name}
      property_values: [a, b]
"""
