"""Spec 1 -> 2: `scoring.order` (asc/desc, the predecessor's name) became `scoring.direction`."""

from __future__ import annotations

from provision.migrations import yaml_edit
from provision.migrations.renames import RENAMES

TO_VERSION = 2


def apply(text: str) -> tuple[str, list[str]]:
    """Rewrite a spec_version 1 text; return the new text and one note per change made."""
    notes = []
    for rename in (r for r in RENAMES if r.since == TO_VERSION):
        path = (*rename.parent, rename.old)
        if yaml_edit.find(text, path) is not None and yaml_edit.find(text, (*rename.parent, rename.new)) is None:
            text = yaml_edit.rename_key(text, path, rename.new, dict(rename.values))
            notes.append(rename.describe())
    return text, notes
