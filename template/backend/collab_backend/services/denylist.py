"""A challenge type's denylist document read as standing rules (pure: no storage, no context).

`parse` turns the document (its form is in services/standing.py and docs/challenge-types.md) into
rules in the rulings' predicate vocabulary; `StandingCache` is where the context keeps the rules
last read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collab_backend.services import predicates

PREFIX = "type:"


@dataclass(frozen=True)
class StandingRule:
    id: str
    predicate: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class Standing:
    """The standing rules as read from `source`, the hash of the file, and what was wrong with it."""

    source: str | None = None
    hash: str | None = None
    rules: tuple[StandingRule, ...] = ()
    problem: str | None = None

    def get(self, rule_id: str) -> StandingRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass
class StandingCache:
    """The standing rules last read, kept while the seeded file's hash stays the same."""

    last: Standing | None = None


def parse(doc: Any) -> tuple[list[StandingRule], list[str]]:
    """The standing rules a denylist document holds, and what in it is not a rule (never raises)."""
    if not isinstance(doc, dict) or doc.get("format") != "denylist" or doc.get("version") != 1:
        return [], ['not a denylist: {"format": "denylist", "version": 1, "names": ..., "values": ...}']
    found: list[tuple[str, dict[str, Any], Any]] = []
    names, values = doc.get("names", {}), doc.get("values", {})
    for where, table in names.items() if isinstance(names, dict) else []:
        for name, reason in table.items() if isinstance(table, dict) else []:
            found.append((f"{where}.{name}", {"field": f"{where}.{name}", "op": "set"}, reason))
    for entry in values.values() if isinstance(values, dict) else []:
        entry = entry if isinstance(entry, dict) else {}
        denied, fields, keys_of = (entry.get(k) for k in ("denied", "fields", "keys_of"))
        for value, reason in denied.items() if isinstance(denied, dict) else []:
            for where in fields if isinstance(fields, list) else []:
                found.append((f"{where}={value}", {"field": where, "op": "equals", "value": value}, reason))
            for where in keys_of if isinstance(keys_of, list) else []:
                found.append((f"{where}.{value}", {"field": f"{where}.{value}", "op": "set"}, reason))
    rules, problems = [], []
    for name, raw, reason in found:
        try:
            predicate = predicates.check(raw)
        except predicates.PredicateError as exc:
            problems.append(f"{name[:120]}: {exc.message}")
            continue
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{name[:120]}: no reason")
            continue
        rules.append(StandingRule(PREFIX + name, predicate, reason))
    return rules, problems
