"""Ruling predicates: a condition over a submission's config that an organizers' ruling names.

A predicate is `{"field": "<dotted path>", "op": "set" | "equals" | "in", "value": ...}`, read on
the JSON file that the challenge type names as its submission config (the Gemma type:
`submission.json`, so `engine_args.kv_cache_dtype` is that key of its `engine_args`):

- `set`: the field is present (any value, null included); no `value`.
- `equals`: the field is present and equals `value` (JSON equality: `1` equals `1.0`, never `true`).
- `in`: the field is present and equals one of `value`, a list of 1 to 100 JSON values.

A path is 1 to 8 names of letters, digits, `_` and `-`, joined by `.`; a name that is a number
indexes a list. Checking (`check`) says what is wrong and how to write it; matching (`matches`)
never raises, whatever the config holds (a config that is not JSON matches nothing).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

OPS = ("set", "equals", "in")
MAX_NAMES = 8
MAX_IN = 100
MAX_VALUE_BYTES = 4096
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
EXAMPLE = '{"field": "engine_args.kv_cache_dtype", "op": "in", "value": ["fp8", "fp8_e5m2"]}'


class PredicateError(ValueError):
    """A predicate that cannot be evaluated: what is wrong, and how to write it (`hint`)."""

    def __init__(self, message: str, hint: str = f"write a predicate such as {EXAMPLE}") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def check(raw: Any) -> dict[str, Any]:
    """The predicate as the record keeps it, or PredicateError saying what is wrong."""
    if not isinstance(raw, dict):
        raise PredicateError("a predicate is an object with `field`, `op` and (except for `set`) `value`")
    extra = sorted(set(raw) - {"field", "op", "value"})
    if extra:
        raise PredicateError(f"unknown key(s) in the predicate: {', '.join(map(str, extra))[:200]}")
    op = raw.get("op")
    if op not in OPS:
        raise PredicateError(f"unknown op {str(op)[:40]!r}", f"`op` is one of {', '.join(OPS)}; e.g. {EXAMPLE}")
    field = raw.get("field")
    if not isinstance(field, str) or not field:
        raise PredicateError("`field` is a dotted path in the submission config, e.g. engine_args.kv_cache_dtype")
    names = field.split(".")
    if len(names) > MAX_NAMES or not all(_NAME.match(n) for n in names):
        raise PredicateError(
            f"`field` {field[:80]!r} is not a path", f"1 to {MAX_NAMES} names of letters, digits, _ and -, joined by ."
        )
    if op == "set":
        if "value" in raw:
            raise PredicateError("`set` takes no `value`", "leave `value` out, or use `equals`")
        return {"field": field, "op": op}
    if "value" not in raw:
        raise PredicateError(f"`{op}` needs a `value`")
    value = raw["value"]
    if op == "in" and (not isinstance(value, list) or not 1 <= len(value) <= MAX_IN):
        raise PredicateError(f"`in` takes a list of 1 to {MAX_IN} values", f"e.g. {EXAMPLE}")
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (ValueError, TypeError):
        raise PredicateError("`value` is JSON without NaN or infinities") from None
    if size > MAX_VALUE_BYTES:
        raise PredicateError(f"`value` is longer than {MAX_VALUE_BYTES} bytes as JSON")
    return {"field": field, "op": op, "value": value}


def lookup(config: Any, field: str) -> tuple[bool, Any]:
    """Whether the config holds the dotted path, and the value there."""
    node = config
    for name in field.split("."):
        if isinstance(node, dict) and name in node:
            node = node[name]
        elif isinstance(node, list) and name.isdigit() and int(name) < len(node):
            node = node[int(name)]
        else:
            return False, None
    return True, node


def canonical(value: Any) -> Any:
    """A value compared as JSON compares: numbers by value, booleans apart from numbers, keys unordered."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        number = float(value)
        return ("number", number if math.isfinite(number) else repr(number))
    if isinstance(value, list):
        return ("list", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((str(k), canonical(v)) for k, v in value.items())))
    return ("other", repr(value))


def matches(predicate: dict[str, Any], config: Any) -> bool:
    """Whether a checked predicate holds on a submission config (any JSON value)."""
    found, value = lookup(config, predicate["field"])
    if not found:
        return False
    if predicate["op"] == "set":
        return True
    if predicate["op"] == "equals":
        return bool(canonical(value) == canonical(predicate["value"]))
    return canonical(value) in {canonical(v) for v in predicate["value"]}


def words(predicate: dict[str, Any]) -> str:
    """The predicate in one phrase, for announcements and refusals."""
    field, op = predicate["field"], predicate["op"]
    if op == "set":
        return f"`{field}` is set"
    shown = json.dumps(predicate["value"], ensure_ascii=False)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    return f"`{field}` equals {shown}" if op == "equals" else f"`{field}` is one of {shown}"
