"""The schema itself: valid, strict, editor-friendly, and its derivation templates resolvable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from provision.cli import main
from provision.spec import CURRENT_SPEC_VERSION
from provision.spec.derive import template_sources
from provision.spec.schema import load_schema, subschema

# Keywords the draft-07 based YAML language server understands, plus annotations it ignores
# harmlessly (`deprecated`, our `x-*`) and `$defs`, which `$ref` reaches as a plain JSON pointer.
DRAFT7_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "title", "description", "default", "examples", "type", "enum",
    "const", "properties", "additionalProperties", "required", "items", "minItems", "maxItems",
    "uniqueItems", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minProperties", "propertyNames", "allOf", "not", "deprecated",
}  # fmt: skip


def _nodes(node: Any, where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, child in node.items():
            if key in ("properties", "$defs"):
                for name, sub in child.items():
                    yield from _nodes(sub, f"{where}.{name}")
            elif key in ("items", "additionalProperties", "propertyNames", "not"):
                yield from _nodes(child, f"{where}[{key}]")
            elif key == "allOf":
                for i, sub in enumerate(child):
                    yield from _nodes(sub, f"{where}.allOf[{i}]")


def test_schema_is_valid_for_2020_12_and_draft_7() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft7Validator.check_schema(schema)


def test_schema_id_carries_the_spec_version() -> None:
    assert load_schema()["$id"].endswith(f":v{CURRENT_SPEC_VERSION}")


def test_only_keywords_draft_7_editors_understand() -> None:
    used = {key for _, node in _nodes(load_schema()) for key in node if not key.startswith("x-")}
    assert used <= DRAFT7_KEYWORDS, used - DRAFT7_KEYWORDS


def test_every_object_forbids_unknown_keys() -> None:
    loose = [
        where
        for where, node in _nodes(load_schema())
        if node.get("type") == "object" and node.get("additionalProperties") is not False
        and not isinstance(node.get("additionalProperties"), dict)
    ]  # fmt: skip
    assert loose == []


def test_ref_siblings_are_wrapped_for_draft_7() -> None:
    """Draft-07 ignores keywords beside a bare `$ref`; descriptions must sit beside an `allOf`."""
    offenders = [where for where, node in _nodes(load_schema()) if "$ref" in node and len(node) > 1]
    assert offenders == []


def test_derivation_templates_read_real_keys() -> None:
    for where, node in _nodes(load_schema()):
        derived = node.get("x-derived")
        templates = [derived] if isinstance(derived, str) else list((derived or {}).values())
        for template in templates:
            for source in template_sources(template, ("scoring", "metrics", 0)):
                if source[:3] == ("scoring", "metrics", 0):
                    continue  # a sibling reference: checked on the item schema below
                assert subschema(source) is not None, f"{where}: {template} reads unknown {source}"
    assert subschema(("scoring", "metrics", 0, "field")) is not None
    assert subschema(("scoring", "tracks", 0, "name")) is not None


def test_patterns_stay_in_the_portable_regex_subset() -> None:
    """Python, ECMA (check-jsonschema) and editors disagree on lookbehind, named groups, flags."""
    for where, node in _nodes(load_schema()):
        pattern = node.get("pattern")
        if pattern:
            re.compile(pattern)
            assert not re.search(r"\(\?<|\(\?P|\(\?[aiLmsux]", pattern), f"{where}: {pattern}"


def test_terminal_control_sequences_in_keys_are_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spec is untrusted text: keys with escape codes must not drive the reader's terminal."""
    (tmp_path / "challenge.yaml").write_text(
        'spec_version: 2\n"\\e[2J\\e[31mowned": 1\n"\\e]0;title\\a": 2\n"\\e]0;title\\a": 3\n', encoding="utf-8"
    )
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\u001b" in out or "\\x1b" in out
