"""Spec migrations: bring a challenge.yaml from an older spec_version to the current one.

Copier runs `python -m provision.migrations` after every `copier update` (see copier.yml); it is
idempotent, decides by the file's own `spec_version` rather than by template versions, and edits
text in place so the owner's comments survive. Standard library and PyYAML only: it runs in
Copier's interpreter, and it imports nothing of the kit outside this package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from provision.migrations import m002_direction, yaml_edit


@dataclass(frozen=True)
class Migration:
    """One step: text at `to_version - 1` in, text at `to_version` and notes out."""

    to_version: int
    apply: Callable[[str], tuple[str, list[str]]]


MIGRATIONS: tuple[Migration, ...] = (Migration(m002_direction.TO_VERSION, m002_direction.apply),)
CURRENT_SPEC_VERSION = MIGRATIONS[-1].to_version


class MigrationError(Exception):
    """The file cannot be migrated as it is (unreadable, not YAML, or from the future)."""


@dataclass(frozen=True)
class Report:
    """What `migrate_text` did."""

    from_version: int
    to_version: int
    notes: list[str]

    @property
    def changed(self) -> bool:
        """Whether the text was rewritten."""
        return self.from_version != self.to_version


def spec_version_of(text: str) -> int:
    """The `spec_version` a text declares (1 when absent: the key was optional before 2)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MigrationError(f"not valid YAML, fix it and run `collab migrate` again: {exc}") from None
    version = data.get("spec_version", 1) if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MigrationError(f"spec_version must be a positive whole number, found {version!r}")
    if version > CURRENT_SPEC_VERSION:
        raise MigrationError(
            f"spec_version {version} is newer than this kit understands ({CURRENT_SPEC_VERSION}); update the template"
        )
    return version


def migrate_text(text: str) -> tuple[str, Report]:
    """Apply every migration above the text's spec_version, in order."""
    start = spec_version_of(text)
    notes: list[str] = []
    for migration in MIGRATIONS:
        if migration.to_version > start:
            text, step_notes = migration.apply(text)
            text = yaml_edit.set_top_level_scalar(text, "spec_version", str(migration.to_version))
            notes += step_notes
    return text, Report(start, max(start, CURRENT_SPEC_VERSION), notes)


def migrate_file(path: Path, *, check: bool = False) -> Report:
    """Migrate a spec file in place (or only report, with `check`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MigrationError(f"cannot read {path}: {exc.strerror}") from None
    new_text, report = migrate_text(text)
    if report.changed and not check:
        path.write_text(new_text, encoding="utf-8")
    return report


def describe(path: Path, report: Report, *, check: bool = False) -> str:
    """One line per migration outcome, for people."""
    if not report.changed:
        return f"{path}: already at spec_version {report.to_version}"
    verb = "would migrate" if check else "migrated"
    lines = [f"{path}: {verb} spec_version {report.from_version} -> {report.to_version}"]
    lines += [f"  - {note}" for note in report.notes]
    return "\n".join(lines)
