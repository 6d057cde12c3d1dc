"""Reading a harness's summary.json and checking it against the kit's job summary schema.

The schema is `schemas/job-summary.schema.json` itself (linked beside this module, so the Space
carries it). The backend has no JSON Schema library, so the keywords that schema uses are
interpreted here; a test keeps the schema within them and compares verdicts with `jsonschema`.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("job-summary.schema.json")
MAX_SUMMARY_BYTES = 64 * 1024
MAX_DEPTH = 32
# Keywords interpreted below; the others listed only annotate.
CHECKED = frozenset(
    {"type", "required", "properties", "additionalProperties", "items", "minLength", "maxLength", "minItems",
     "maxItems", "minimum", "maximum", "const", "enum", "allOf", "if", "then", "else"}
)  # fmt: skip
ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "default", "examples"})


class SummaryProblem(ValueError):
    """summary.json is unreadable or does not match the schema; the message says where."""


@cache
def schema() -> dict[str, Any]:
    """The job summary schema."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def parse_summary(data: bytes) -> dict[str, Any]:
    """The summary as a JSON object that matches the schema, or SummaryProblem."""
    if len(data) > MAX_SUMMARY_BYTES:
        raise SummaryProblem(f"summary.json is larger than {MAX_SUMMARY_BYTES} bytes")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SummaryProblem(f"summary.json is not JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise SummaryProblem("summary.json must hold a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise SummaryProblem(f"summary.json nests deeper than {MAX_DEPTH} levels")
    found = problems(value, schema())
    if found:
        raise SummaryProblem("summary.json does not match the job summary schema: " + "; ".join(found[:3]))
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "integer": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer(),
}


def problems(value: Any, rule: dict[str, Any], where: str = "") -> list[str]:
    """Every way `value` breaks `rule` (the subset of JSON Schema in CHECKED), as `path: problem`."""
    at = where or "(root)"
    out: list[str] = []
    kinds = rule.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_TYPES[name](value) for name in names):
            return [f"{at}: should be {' or '.join(names)}"]
    if "const" in rule and value != rule["const"]:
        out.append(f"{at}: should be {rule['const']!r}")
    if "enum" in rule and value not in rule["enum"]:
        out.append(f"{at}: should be one of {rule['enum']!r}")
    if isinstance(value, str):
        if len(value) < rule.get("minLength", 0):
            out.append(f"{at}: is too short")
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            out.append(f"{at}: is too long")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in rule and value < rule["minimum"]:
            out.append(f"{at}: is below {rule['minimum']}")
        if "maximum" in rule and value > rule["maximum"]:
            out.append(f"{at}: is above {rule['maximum']}")
    if isinstance(value, list):
        if len(value) < rule.get("minItems", 0):
            out.append(f"{at}: needs at least {rule['minItems']} item(s)")
        if "maxItems" in rule and len(value) > rule["maxItems"]:
            out.append(f"{at}: holds more than {rule['maxItems']} item(s)")
        if isinstance(rule.get("items"), dict):
            for i, item in enumerate(value):
                out += problems(item, rule["items"], f"{where}[{i}]")
    if isinstance(value, dict):
        out += [f"{at}: lacks {key!r}" for key in rule.get("required", ()) if key not in value]
        properties = rule.get("properties", {})
        for key, sub in properties.items():
            if key in value:
                out += problems(value[key], sub, f"{where}.{key}" if where else key)
        if rule.get("additionalProperties") is False:
            out += [f"{at}: unknown field {key!r}" for key in value if key not in properties]
    for sub in rule.get("allOf", ()):
        out += problems(value, sub, where)
    if "if" in rule:
        branch = rule.get("then") if not problems(value, rule["if"], where) else rule.get("else")
        if branch is not None:
            out += problems(value, branch, where)
    return out


def keywords(rule: Any) -> set[str]:
    """Every keyword a schema uses (property names excluded), to check it stays within CHECKED."""
    if not isinstance(rule, dict):
        return set()
    found = set(rule)
    for key, sub in rule.items():
        if key == "properties":
            for inner in sub.values():
                found |= keywords(inner)
        elif key in ("items", "if", "then", "else", "additionalProperties"):
            found |= keywords(sub)
        elif key == "allOf":
            for inner in sub:
                found |= keywords(inner)
    return found
