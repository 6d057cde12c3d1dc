"""The YAML frontmatter of a promoted file (a post, a result): parsed safely, then made storable.

The record holds frontmatter values as JSON (the index) and YAML (the files), so only what both
spell the same may pass: text, finite numbers that fit 64 bits, booleans, null, lists, and
mappings with text keys. YAML reads more than that, and an agent writes it by accident: an
unquoted date (`date: 2026-01-05`) or timestamp becomes a date object, `!!binary` bytes,
`!!set` a set, a double-quoted escape of half a UTF-16 pair a lone surrogate. Dates and
timestamps are unambiguous, so they are normalised to their ISO 8601 text; everything else
is refused here, at the door, naming the field and how to quote it, so nothing unstorable ever
reaches the writer.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import yaml

from collab_backend.errors import APIError
from collab_backend.text import unstorable

MAX_FRONTMATTER_DEPTH = 16
MAX_INT = 2**63 - 1  # what every JSON reader of the index (orjson included) reads as an integer


def _check_shape(header: str) -> None:
    """Refuse aliases and deep nesting before building anything.

    A few KB of YAML aliases can stand for billions of values once written out as JSON (the
    index and the files are JSON and YAML without aliases), so a header may use none.
    """
    depth = 0
    for event in yaml.parse(header, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise APIError("VALIDATION_FAILED", "the frontmatter may not use YAML aliases (*name)", "write values out")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_FRONTMATTER_DEPTH:
                raise APIError("VALIDATION_FAILED", f"the frontmatter nests deeper than {MAX_FRONTMATTER_DEPTH}", None)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    """A client's `---` YAML header (safe-loaded, mapping only, made storable) and the body after it."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}, text
    try:
        _check_shape(text[4:end])
        fields = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError:
        raise APIError("VALIDATION_FAILED", "the frontmatter is not valid YAML", "fix or remove the header") from None
    if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
        raise APIError("VALIDATION_FAILED", "the frontmatter must be a mapping of text keys", None)
    return storable(fields, ""), text[end + 5 :].lstrip("\n")


def _refuse(where: str, what: str, hint: str | None = None) -> APIError:
    top = where.split(".", 1)[0].split("[", 1)[0]
    return APIError(
        "VALIDATION_FAILED",
        f"frontmatter `{where}` holds {what}, which the record cannot store",
        hint or f'quote the value as text, e.g. {top}: "..."',
    )


def storable(value: Any, where: str) -> Any:
    """`value` as the record stores it (dates as ISO text), or VALIDATION_FAILED naming `where`."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        problem = unstorable(value)
        if problem:
            raise _refuse(where, problem, "write the character itself (UTF-8), or leave it out")
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise _refuse(where, "an integer larger than 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refuse(where, f"a number that is not finite ({value})")
        return value
    if isinstance(value, dt.date):  # a datetime is a date too: both become ISO 8601 text
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [storable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _refuse(where, f"a key that is not text ({key!r})", "quote the key")
            inner = f"{where}.{key}" if where else key
            problem = unstorable(key)
            if problem:
                raise _refuse(f"{where}.{key!r}" if where else repr(key), f"{problem} in a key", "rename the key")
            out[key] = storable(item, inner)
        return out
    raise _refuse(where, f"a {type(value).__name__} value (a YAML tag such as !!binary or !!set)")
