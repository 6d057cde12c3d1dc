"""Ruling predicates: checking says what is wrong; matching agrees with its definition and never raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jobs_world import bundled_type

from collab_backend.services import predicates
from collab_backend.services.predicates import PredicateError, check, lookup, matches

NAMES = st.sampled_from(["engine_args", "kv_cache_dtype", "model", "0", "1", "speculative_config", "x-y"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.sampled_from(["fp8", "auto", ""])
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3), max_leaves=12
)
FIELDS = st.lists(NAMES, min_size=1, max_size=3).map(".".join)


@given(config=JSON, field=FIELDS, value=JSON)
@settings(max_examples=300, deadline=None)
def test_matching_agrees_with_the_definition_and_never_raises(config: Any, field: str, value: Any) -> None:
    is_set = matches(check({"field": field, "op": "set"}), config)
    equals = matches(check({"field": field, "op": "equals", "value": value}), config)
    one_of = matches(check({"field": field, "op": "in", "value": [value]}), config)
    assert is_set == lookup(config, field)[0]
    assert one_of == equals  # `in [v]` is `equals v`
    assert not equals or is_set  # equal implies present
    if is_set:
        found = lookup(config, field)[1]
        assert matches(check({"field": field, "op": "equals", "value": found}), config)  # a value equals itself


@given(raw=st.dictionaries(st.sampled_from(["field", "op", "value", "x"]), JSON, max_size=4) | JSON)
@settings(max_examples=300, deadline=None)
def test_checking_anything_either_gives_a_predicate_or_says_what_is_wrong(raw: Any) -> None:
    try:
        checked = check(raw)
    except PredicateError as exc:
        assert exc.message and exc.hint
        return
    assert checked["op"] in predicates.OPS
    matches(checked, raw)  # a checked predicate evaluates on any JSON without raising


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (None, False, False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1.0}, True),
        ([1, 2], [2, 1], False),
        ("1", 1, False),
    ],
)
def test_equality_is_json_equality(a: Any, b: Any, same: bool) -> None:
    assert matches(check({"field": "f", "op": "equals", "value": b}), {"f": a}) is same


def test_a_number_in_the_path_indexes_a_list_and_words_say_the_predicate() -> None:
    config = {"layers": [{"bits": 4}, {"bits": 8}]}
    assert matches(check({"field": "layers.1.bits", "op": "equals", "value": 8}), config)
    assert not matches(check({"field": "layers.2.bits", "op": "set"}), config)
    assert predicates.words({"field": "a.b", "op": "in", "value": ["x"]}) == '`a.b` is one of ["x"]'
    assert predicates.words({"field": "a.b", "op": "set"}) == "`a.b` is set"


def test_gemma_rules_read_as_data_on_its_example_submissions() -> None:
    """The Gemma type's submission.json, as its examples have it: a ruling tells them apart, and a denylist entry
    (an engine argument the harness refuses) is the same kind of rule."""
    gemma = bundled_type("gemma")
    assert gemma.submission_config == "submission.json"  # type: ignore[attr-defined]
    folder = gemma.examples_dir / "valid"  # type: ignore[attr-defined]
    configs = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*/submission.json")}
    drafter = check({"field": "speculative_config.num_speculative_tokens", "op": "in", "value": [5, 6, 7]})
    assert {name for name, config in configs.items() if matches(drafter, config)} == {"int4_qat_mtp"}
    qat = check({"field": "model", "op": "equals", "value": "google/gemma-4-E4B-it-qat-w4a16-ct"})
    assert {name for name, config in configs.items() if matches(qat, config)} == {"int4_qat", "int4_qat_mtp"}
    denied = check({"field": "engine_args.trust_remote_code", "op": "set"})  # on the harness's own denylist
    assert not any(matches(denied, config) for config in configs.values())
    assert matches(denied, {**configs["bf16_baseline"], "engine_args": {"trust_remote_code": False}})
