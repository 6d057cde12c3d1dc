"""Renamed spec keys: the single table that both the spec loader and the migrations read.

A renamed key keeps working for one spec version: the loader maps it in memory and warns, and
the migration to `since` rewrites the file. Standard library only (migrations run in Copier's
interpreter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rename:
    """`parent.old` became `parent.new` in spec version `since`, with values mapped by `values`."""

    parent: tuple[str, ...]
    old: str
    new: str
    since: int
    values: Mapping[object, object] = field(default_factory=dict)

    def describe(self) -> str:
        """A sentence naming the replacement, for warnings and migration output."""
        where = ".".join(self.parent)
        text = f"'{where}.{self.old}' was renamed to '{where}.{self.new}' in spec_version {self.since}"
        if self.values:
            text += " (" + ", ".join(f"{k} -> {v}" for k, v in self.values.items()) + ")"
        return text


RENAMES: tuple[Rename, ...] = (
    Rename(("scoring",), "order", "direction", since=2, values={"desc": "maximize", "asc": "minimize"}),
)
