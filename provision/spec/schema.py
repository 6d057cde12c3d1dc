"""The challenge spec's JSON Schema: loading it, walking it, and turning its errors into Problems.

The schema (schemas/challenge.schema.json) is the only definition of the spec's shape and static
defaults. Errors are rewritten for people: unknown keys get a did-you-mean, enums list their
choices, and a pattern failure says in words what the pattern wants (the schema's `x-messages`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import jsonschema

from provision.paths import CHALLENGE_SCHEMA, schemas_dir
from provision.spec.problems import Problem, did_you_mean, show_value
from provision.spec.source import SourceMap

Schema = Mapping[str, Any]

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@cache
def load_schema() -> Schema:
    """The challenge spec schema, parsed once per process."""
    data: Schema = json.loads((schemas_dir() / CHALLENGE_SCHEMA).read_text(encoding="utf-8"))
    return data


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # Python's `$` also matches before a final newline; ECMA's (editors, check-jsonschema) does not.
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern)


def _ecma_pattern(
    validator: Any, pattern: str, instance: object, schema: Schema
) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# The validator the whole kit uses: draft 2020-12 with `pattern` read the way editors read it,
# so "org\n" is refused here exactly as it is refused while typing.
SpecValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]  # untyped upstream
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
)


@cache
def _validator() -> Any:
    return SpecValidator(load_schema())


def resolve(node: Schema, root: Schema | None = None) -> dict[str, Any]:
    """Merge `allOf: [{$ref}]` (or a bare `$ref`) into the node; the node's own keys win."""
    root = root if root is not None else load_schema()
    merged: dict[str, Any] = {}
    refs = [part["$ref"] for part in node.get("allOf", ()) if "$ref" in part]
    if "$ref" in node:
        refs.append(node["$ref"])
    for ref in refs:
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        merged.update(resolve(target, root))
    merged.update({k: v for k, v in node.items() if k not in ("allOf", "$ref")})
    return merged


def subschema(path: tuple[str | int, ...]) -> dict[str, Any] | None:
    """The resolved schema of the value at `path`, or None where the schema does not describe it."""
    node = resolve(load_schema())
    for part in path:
        if isinstance(part, int):
            items = node.get("items")
            if not isinstance(items, Mapping):
                return None
            node = resolve(items)
        else:
            props = node.get("properties", {})
            if part in props:
                node = resolve(props[part])
            elif isinstance(node.get("additionalProperties"), Mapping):
                node = resolve(node["additionalProperties"])
            else:
                return None
    return node


@cache
def _key_index() -> dict[str, list[str]]:
    """Every property name in the schema with the dotted paths where it may be written."""
    index: dict[str, list[str]] = {}

    def walk(node: Schema, prefix: str) -> None:
        node = resolve(node)
        for name, child in node.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            index.setdefault(name, []).append(path)
            walk(child, path)
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], f"{prefix}[]")

    walk(load_schema(), "")
    return index


def _key_elsewhere(name: object) -> str | None:
    """Where a key that is unknown at its level is allowed (a section moved or mis-indented)."""
    places = _key_index().get(name) if isinstance(name, str) else None
    return " or ".join(f"'{p}'" for p in places[:3]) if places else None


def matches(value: object, path: tuple[str | int, ...]) -> bool:
    """Whether `value` is valid for the schema at `path` taken alone."""
    node = subschema(path)
    return node is not None and bool(SpecValidator(node).is_valid(value))


# Stable problem codes per failed keyword, most telling first: one value breaking several rules
# (too long *and* off-pattern, null *and* not a name) gets only the first message.
_CODES = {
    "type": "wrong_type",
    "enum": "not_allowed",
    "const": "not_allowed",
    "minLength": "length",
    "maxLength": "length",
    "minimum": "range",
    "maximum": "range",
    "exclusiveMinimum": "range",
    "exclusiveMaximum": "range",
    "minItems": "size",
    "maxItems": "size",
    "uniqueItems": "size",
    "minProperties": "size",
    "not": "forbidden",
    "pattern": "pattern",
}
_RANK = {code: rank for rank, code in enumerate(dict.fromkeys(_CODES.values()))}


def validate(data: object, smap: SourceMap) -> list[Problem]:
    """Every schema violation in `data`, as located problems, one per offending value."""
    best: dict[tuple[object, ...], Problem] = {}
    for error in _validator().iter_errors(data):
        for problem in _translate(error, smap):
            held = best.get(problem.path)
            if held is None or _RANK.get(problem.code, len(_RANK)) < _RANK.get(held.code, len(_RANK)):
                best[problem.path] = problem
    return list(best.values())


def _translate(error: jsonschema.ValidationError, smap: SourceMap) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    schema: Schema = error.schema if isinstance(error.schema, Mapping) else {}
    custom = schema.get("x-messages", {}).get(str(error.validator))
    kind = str(error.validator)
    value: Any = error.validator_value
    inst: Any = error.instance
    on_key = "propertyNames" in error.schema_path and isinstance(inst, str)
    if on_key:  # a bad mapping key: point at the key itself, not at the mapping holding it
        path = (*path, inst)
    if kind == "required":
        for name in value:
            if isinstance(inst, dict) and name not in inst:
                described = resolve(schema.get("properties", {}).get(name, {})).get("description")
                yield smap.problem(
                    (*path, name),
                    f"missing required key '{name}'",
                    code="missing",
                    expected=f"'{name}' under {'this mapping' if path else 'the top level'}",
                    hint=described,
                )
        return
    if kind == "additionalProperties" and value is False and isinstance(inst, dict):
        allowed = sorted(schema.get("properties", {}))
        for name in inst:
            if name in allowed:
                continue
            guess = did_you_mean(name, allowed)
            elsewhere = None if guess else _key_elsewhere(name)
            hint = f"did you mean '{guess}'?" if guess else None
            if elsewhere:
                hint = f"'{name}' belongs under another section: did you mean {elsewhere}?"
            yield smap.problem(
                (*path, str(name)),
                f"unknown key {show_value(name)}",
                key=True,
                code="unknown_key",
                expected="one of: " + ", ".join(allowed),
                hint=hint,
            )
        return
    if kind in ("enum", "const"):
        choices = [str(c) for c in (value if kind == "enum" else [value])]
        guess = did_you_mean(inst, choices)
        yield smap.problem(
            path,
            "not one of the allowed values",
            code="not_allowed",
            found=show_value(inst),
            expected="one of: " + ", ".join(choices),
            hint=f"did you mean '{guess}'?" if guess else custom,
        )
        return
    if kind == "type":
        wanted = value if isinstance(value, list) else [value]
        hint = None
        if "string" in wanted and isinstance(inst, bool):
            hint = "YAML reads yes/no/on/off/true/false as booleans; quote the value to keep it as text"
        elif "string" in wanted and isinstance(inst, int | float):
            hint = "quote the value to keep it as text"
        elif "object" in wanted and inst is None:
            hint = "the key has no value; indent its entries under it, or remove the key"
        yield smap.problem(
            path,
            "wrong type",
            code="wrong_type",
            found=show_value(inst),
            expected=" or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted),
            hint=hint,
        )
        return
    messages = {
        "pattern": custom or f"text matching {value}",
        "not": custom or "a different value",
        "minLength": f"at least {value} character{'s' * (value != 1)}",
        "maxLength": f"at most {value} characters",
        "minimum": f"a value >= {value}",
        "maximum": f"a value <= {value}",
        "exclusiveMinimum": f"a value > {value}",
        "exclusiveMaximum": f"a value < {value}",
        "minItems": f"at least {value} item{'s' * (value != 1)}",
        "maxItems": f"at most {value} items",
        "uniqueItems": "no repeated items",
        "minProperties": custom or f"at least {value} key{'s' * (value != 1)}",
    }
    found = show_value(inst)
    if kind in ("minLength", "maxLength") and isinstance(inst, str):
        found = f"{show_value(inst)} ({len(inst)} characters)"
    yield smap.problem(
        path,
        "invalid key" if on_key else "invalid value",
        key=on_key,
        code=_CODES.get(kind, "invalid"),
        found=found,
        expected=messages.get(kind, error.message),
    )
