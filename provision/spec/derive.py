"""The one place where a spec's defaults are applied.

Static defaults are the schema's `default` keywords; derived defaults are its `x-derived`
templates, e.g. `{challenge.org}/{challenge.slug}-main-bucket`. A dotted name in a template is
read from the document root, a bare name from the same mapping (a metric's `{field}`). Nothing
here names a field: add a default to the schema and every consumer (loader, docs, Space
variables) sees it.
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provision.spec.problems import JsonPath
from provision.spec.schema import Schema, load_schema, resolve

_FIELD = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


@dataclass(frozen=True)
class Derived:
    """A value computed from other fields: where it went and what it was made of."""

    path: JsonPath
    template: str
    sources: tuple[JsonPath, ...]


def template_sources(template: str, parent: JsonPath) -> tuple[JsonPath, ...]:
    """The paths a template reads, in order."""
    out: list[JsonPath] = []
    for name in _FIELD.findall(template):
        out.append(tuple(name.split(".")) if "." in name else (*parent, name))
    return tuple(out)


def apply_defaults(document: Mapping[str, Any]) -> tuple[dict[str, Any], list[Derived]]:
    """Return a copy of `document` with every default filled in, and the derived values' origins."""
    filled = copy.deepcopy(dict(document))
    pending: list[tuple[JsonPath, str]] = []
    _fill(filled, resolve(load_schema()), (), pending)
    return filled, _derive(filled, pending)


def _fill(instance: Any, schema: Schema, path: JsonPath, pending: list[tuple[JsonPath, str]]) -> None:
    if isinstance(instance, dict):
        for name, raw in schema.get("properties", {}).items():
            sub = resolve(raw)
            if name not in instance:
                if "default" in sub:
                    instance[name] = copy.deepcopy(sub["default"])
                elif isinstance(sub.get("x-derived"), str):
                    pending.append(((*path, name), sub["x-derived"]))
            if name in instance:
                derived_children = sub.get("x-derived")
                if isinstance(derived_children, Mapping) and isinstance(instance[name], dict):
                    for child, template in derived_children.items():
                        if child not in instance[name]:
                            pending.append(((*path, name, child), template))
                _fill(instance[name], sub, (*path, name), pending)
    elif isinstance(instance, list) and isinstance(schema.get("items"), Mapping):
        item_schema = resolve(schema["items"])
        for i, item in enumerate(instance):
            _fill(item, item_schema, (*path, i), pending)


def _get(document: Any, path: JsonPath) -> Any:
    node = document
    for part in path:
        node = node[part]
    return node


def _derive(document: dict[str, Any], pending: list[tuple[JsonPath, str]]) -> list[Derived]:
    """Resolve templates in dependency order (a template may read another derived value)."""
    done: list[Derived] = []
    waiting = list(pending)
    while waiting:
        progressed = False
        for slot in list(waiting):
            path, template = slot
            sources = template_sources(template, path[:-1])
            if any(src in [p for p, _ in waiting] for src in sources):
                continue
            values = {}
            for name, src in zip(_FIELD.findall(template), sources, strict=True):
                values[name] = _get(document, src)
            fmt = _FIELD.sub(lambda m: "{" + m.group(1).replace(".", "__") + "}", template)
            _get(document, path[:-1])[path[-1]] = string.Formatter().vformat(
                fmt, (), {k.replace(".", "__"): v for k, v in values.items()}
            )
            done.append(Derived(path, template, sources))
            waiting.remove(slot)
            progressed = True
        if not progressed:  # a template refers to a value no rule provides: a schema bug
            raise RuntimeError(f"cyclic or dangling x-derived templates: {waiting}")
    return done
