"""A type's schemas: defined once, inside its package, and resolved offline through the contract.

The kit's `schemas/` holds the kit-wide formats only; a type's own formats live in
`challenge_<name>/schemas/`, so they travel with the collabs of that type and no other. A type's
summary schema may reference either by `$id`; `ChallengeType.summary_validator()` resolves the
references from those local files and never fetches one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from type_conformance import REPO

from provision.challenge_types import ChallengeType, CheckResult, load_type, registered
from provision.errors import ChallengeTypeError
from provision.paths import schemas_dir

JOB_SUMMARY_ID = "urn:agent-collabs:schema:job-summary:v1"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _never(filename: str, frontmatter: Mapping[str, Any], body: str, spec: Any) -> CheckResult:
    return CheckResult(None, "not checked")


def _type(
    root: Path, summary: Mapping[str, Any], own: Mapping[str, Mapping[str, Any]] = {}
) -> ChallengeType:  # read only
    """A type `demo` whose summary schema is `summary` and whose schemas/ holds `own` (file name: schema)."""
    package = root / "challenge_demo"
    (package / "schemas").mkdir(parents=True)
    for name, schema in own.items():
        (package / "schemas" / name).write_text(json.dumps(schema), encoding="utf-8")
    (package / "summary.schema.json").write_text(json.dumps(summary), encoding="utf-8")
    return ChallengeType(name="demo", title="Demo", summary="a demo type", package_dir=package, cheap_check=_never)


SUMMARY = {"valid": True, "reasons": [], "proxy": True, "provenance": {"evaluator": "demo", "evaluator_version": "1"}}


# ---------------------------------------------------------------- where the schemas are


def test_the_kit_schemas_are_kit_wide_only() -> None:
    """No registered type's format sits in the kit's schemas/, which every collab receives."""
    names = [p.name for p in schemas_dir().glob("*.json")]
    assert "job-summary.schema.json" in names and "challenge.schema.json" in names
    for name in registered():
        assert [n for n in names if n.startswith(f"{name}-")] == [], f"challenge_{name}/schemas/ is where they go"


def test_gemma_declares_its_one_summary_schema() -> None:
    gemma = load_type("gemma")
    assert gemma.summary_schema_path == REPO / "challenge_gemma" / "schemas" / "gemma-summary.schema.json"
    assert gemma.load_summary_schema()["$id"] == "urn:agent-collabs:schema:gemma-summary:v1"
    assert not (REPO / "challenge_gemma" / "summary.schema.json").exists(), "one definition of the Gemma summary"


# ---------------------------------------------------------------- references, offline


def test_a_reference_to_the_kit_schema_is_resolved(tmp_path: Path) -> None:
    ctype = _type(tmp_path, {"$schema": DRAFT, "type": "object", "allOf": [{"$ref": JOB_SUMMARY_ID}]})
    validator = ctype.summary_validator()
    assert list(validator.iter_errors(SUMMARY)) == []
    assert [e.message for e in validator.iter_errors({**SUMMARY, "proxy": "no"})] == ["'no' is not of type 'boolean'"]


def test_a_reference_to_the_types_own_schema_is_resolved(tmp_path: Path) -> None:
    part = {"$schema": DRAFT, "$id": "urn:demo:part:v1", "type": "integer", "minimum": 1}
    summary = {"$schema": DRAFT, "type": "object", "properties": {"cities": {"$ref": "urn:demo:part:v1"}}}
    validator = _type(tmp_path, summary, {"demo-part.schema.json": part}).summary_validator()
    assert list(validator.iter_errors({"cities": 3})) == []
    assert list(validator.iter_errors({"cities": 0}))


@pytest.mark.parametrize(
    "ref",
    ["urn:agent-collabs:schema:nothing:v1", "https://example.invalid/summary.schema.json", "job-summary.schema.json"],
)
def test_an_unknown_reference_is_refused_without_fetching(tmp_path: Path, ref: str) -> None:
    ctype = _type(tmp_path, {"$schema": DRAFT, "type": "object", "allOf": [{"$ref": ref}]})
    with pytest.raises(ChallengeTypeError, match=r"challenge_demo/summary.schema.json: \$ref .* names no known schema"):
        ctype.summary_validator()


def test_a_type_schema_may_not_take_the_kits_id(tmp_path: Path) -> None:
    own = {"job-summary.schema.json": {"$schema": DRAFT, "$id": JOB_SUMMARY_ID, "type": "object"}}
    ctype = _type(tmp_path, {"$schema": DRAFT, "type": "object"}, own)
    with pytest.raises(ChallengeTypeError, match=r"demo/schemas/job-summary.schema.json: its \$id .* is taken"):
        ctype.summary_validator()


def test_a_type_schema_needs_an_id(tmp_path: Path) -> None:
    ctype = _type(tmp_path, {"$schema": DRAFT, "type": "object"}, {"demo-x.schema.json": {"type": "object"}})
    with pytest.raises(ChallengeTypeError, match=r'demo/schemas/demo-x.schema.json: a schema needs an "\$id"'):
        ctype.schema_registry()
