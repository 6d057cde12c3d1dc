"""The summary check: the real schema file, only keywords the backend interprets, verdicts equal to jsonschema's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from collab_backend.jobs.summary import (
    ANNOTATIONS,
    CHECKED,
    MAX_SUMMARY_BYTES,
    SCHEMA_PATH,
    SummaryProblem,
    keywords,
    parse_summary,
    problems,
    schema,
)

GOOD: dict[str, Any] = {
    "valid": True,
    "reasons": [],
    "proxy": True,
    "provenance": {"evaluator": "tiny", "evaluator_version": "1.0"},
    "tps": 12.5,
}


def test_the_backend_reads_the_kits_schema_file() -> None:
    kit = Path(__file__).resolve().parents[2] / "schemas" / "job-summary.schema.json"  # the collab's schemas/
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == json.loads(kit.read_text(encoding="utf-8"))


def test_the_schema_uses_only_keywords_the_backend_interprets() -> None:
    assert keywords(schema()) <= CHECKED | ANNOTATIONS


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"valid": False},  # invalid needs a reason
        {"valid": False, "reasons": ["too slow"]},
        {"valid": True, "reasons": ["no"]},  # valid takes none
        {"reasons": [""]},
        {"reasons": "x"},
        {"proxy": "yes"},
        {"valid": 1},
        {"provenance": {"evaluator": "x"}},
        {"provenance": {"evaluator": "", "evaluator_version": "1"}},
        {"provenance": []},
        {"extra": {"nested": [1, 2]}},
    ],
)
def test_verdicts_equal_jsonschemas(change: dict[str, Any]) -> None:
    document = {**GOOD, **change}
    expected = jsonschema.Draft202012Validator(schema()).is_valid(document)
    assert (not problems(document, schema())) == expected


@pytest.mark.parametrize("missing", ["valid", "reasons", "proxy", "provenance"])
def test_each_required_field_is_required(missing: str) -> None:
    document = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(SummaryProblem, match=missing):
        parse_summary(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"valid": NaN}', "not JSON"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "nests deeper"),
        (b"[" * 100_000, "larger than|not JSON"),
        (b" " * (MAX_SUMMARY_BYTES + 1), "larger than"),
    ],
)
def test_unreadable_summaries_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(SummaryProblem, match=why):
        parse_summary(data)


def test_a_good_summary_is_returned_whole() -> None:
    assert parse_summary(json.dumps(GOOD).encode()) == GOOD
