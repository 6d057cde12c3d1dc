"""The one loader: read challenge.yaml, validate it, apply defaults, return typed objects.

Every problem is collected before anything is returned, so `collab validate` can report them
all at once. The stages run in order, and a later stage only runs on what the earlier ones
accepted: parse (YAML, bounded) -> renamed keys -> schema -> defaults and derived values ->
schema again (derived values obey the same rules) -> cross-field rules -> challenge type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.migrations import CURRENT_SPEC_VERSION
from provision.migrations.renames import RENAMES
from provision.paths import spec_path
from provision.spec import rules, schema, type_names
from provision.spec.derive import Derived, apply_defaults
from provision.spec.model import ChallengeSpec
from provision.spec.problems import Problem, SpecError, json_path, show_value, sort_problems
from provision.spec.source import SourceMap, YamlSourceError, parse_yaml


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec with the warnings met while loading it."""

    spec: ChallengeSpec
    path: Path
    document: dict[str, Any]
    warnings: list[Problem]


def load_spec(target: str | Path) -> LoadedSpec:
    """Load and validate a challenge spec.

    Args:
        target: A collab folder (its challenge.yaml is read) or a spec file.

    Returns:
        The typed spec, its fully defaulted document and any warnings.

    Raises:
        SpecError: with every problem found, when at least one is an error.
    """
    loaded, problems = check_spec(target)
    if loaded is None:
        raise SpecError(problems)
    return loaded


def check_spec(target: str | Path) -> tuple[LoadedSpec | None, list[Problem]]:
    """Like `load_spec`, but return the problems (warnings included) instead of raising."""
    path = spec_path(target)
    text, problems = _read(path)
    if text is None:
        return None, problems
    try:
        data, smap = parse_yaml(text, str(path))
    except YamlSourceError as exc:
        return None, sort_problems(exc.problems)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else show_value(data)
        return None, [
            smap.problem(
                (),
                "the spec must be a YAML mapping",
                code="not_a_mapping",
                found=found,
                expected="keys such as spec_version, challenge, scoring",
                hint="start from the challenge.yaml that `copier copy` renders",
            )
        ]
    problems = _renamed_keys(data, smap)
    problems += schema.validate(data, smap)
    problems += _type_problems(data, smap)
    if any(p.severity == "error" for p in problems):
        return None, sort_problems(problems)
    document, derived = apply_defaults(data)
    smap.add_origins({d.path: d.sources for d in derived})
    problems += _derived_problems(schema.validate(document, smap), derived, smap)
    if not any(p.severity == "error" for p in problems):
        for check in rules.RULES:
            problems.extend(check(document, smap))
        problems += _version_problems(document, smap)
    problems = sort_problems(problems)
    if any(p.severity == "error" for p in problems):
        return None, problems
    spec = ChallengeSpec.model_validate(document)
    return LoadedSpec(spec, path, document, [p for p in problems if p.severity == "warning"]), problems


def _read(path: Path) -> tuple[str | None, list[Problem]]:
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        folder = path.parent
        missing = f"no {path.name} in {folder}" if folder.is_dir() else f"no such folder: {folder}"
        return None, [
            Problem(
                missing,
                file=where,
                code="not_found",
                hint="run in a collab folder, pass its path, or render one with `copier copy`",
            )
        ]
    except IsADirectoryError:
        return None, [
            Problem(
                "this is a folder, not a spec file",
                file=where,
                code="unreadable",
                hint="pass the collab folder itself or its challenge.yaml",
            )
        ]
    except OSError as exc:
        return None, [Problem(f"cannot read the spec: {exc.strerror}", file=where, code="unreadable")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(
                "the file is not UTF-8 text",
                file=where,
                line=line,
                col=col,
                code="encoding",
                found=f"byte 0x{raw[exc.start]:02x}",
                hint="save the file as UTF-8",
            )
        ]
    if not text.strip():
        return None, [
            Problem(
                "the spec is empty",
                file=where,
                code="empty",
                hint="render a starting spec with `copier copy`, or see docs/challenge-spec.md",
            )
        ]
    return text, []


def _renamed_keys(data: dict[str, Any], smap: SourceMap) -> list[Problem]:
    """Map renamed keys in place (they keep working for one release) and warn about each."""
    problems: list[Problem] = []
    for rename in RENAMES:
        parent: Any = data
        for part in rename.parent:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or rename.old not in parent:
            continue
        path = (*rename.parent, rename.old)
        if rename.new in parent:
            problems.append(
                smap.problem(
                    path,
                    f"both '{rename.old}' and its replacement '{rename.new}' are set",
                    key=True,
                    code="renamed_key",
                    hint=f"remove '{rename.old}'",
                )
            )
            continue
        if not rename.values or parent[rename.old] in rename.values:
            # An unmappable value stays under the old key, where the schema reports it in place.
            old_value = parent.pop(rename.old)
            parent[rename.new] = rename.values.get(old_value, old_value)
        problems.append(
            smap.problem(
                path,
                f"'{rename.old}' is deprecated",
                key=True,
                severity="warning",
                code="deprecated_key",
                hint=f"{rename.describe()}; run `collab migrate` to update the file",
            )
        )
    return problems


def _derived_problems(problems: list[Problem], derived: list[Derived], smap: SourceMap) -> list[Problem]:
    """Re-point problems in derived values at the written fields they were made from.

    A value derived from another derived value that is itself invalid is not reported again:
    fixing the first one fixes both.
    """
    origin = {d.path: d for d in derived}
    broken = {p.path for p in problems if p.path in origin}
    out = []
    for problem in problems:
        source = origin.get(problem.path)
        if source is None:
            out.append(problem)
            continue
        if any(s in broken for s in source.sources):
            continue
        written = smap.origins.get(problem.path, ())
        mark = smap.locate(problem.path)
        out.append(
            Problem(
                f"the derived value of {json_path(problem.path)} ({source.template}) is invalid",
                path=problem.path,
                file=problem.file,
                line=mark.line,
                col=mark.col,
                code="derived",
                found=problem.found,
                expected=problem.expected,
                hint=f"shorten or change {', '.join(map(json_path, written))}, "
                f"or set {json_path(problem.path)} explicitly",
            )
        )
    return out


def _type_problems(data: dict[str, Any], smap: SourceMap) -> list[Problem]:
    """An unregistered challenge type (a malformed one is the schema's to report)."""
    challenge = data.get("challenge")
    name = challenge.get("type") if isinstance(challenge, dict) else None
    if not isinstance(name, str) or not schema.matches(name, ("challenge", "type")) or name in type_names.registered():
        return []
    return [
        smap.problem(
            ("challenge", "type"),
            f"unknown challenge type '{name}'",
            code="unknown_type",
            found=repr(name),
            expected="a registered challenge type",
            hint=type_names.unknown_type_hint(name),
        )
    ]


def _version_problems(document: dict[str, Any], smap: SourceMap) -> list[Problem]:
    version = document["spec_version"]
    if version >= CURRENT_SPEC_VERSION:
        return []
    return [
        smap.problem(
            ("spec_version",),
            f"spec_version {version} is older than the current {CURRENT_SPEC_VERSION}",
            severity="warning",
            code="old_spec_version",
            hint="run `collab migrate` to rewrite the file in the current format",
        )
    ]
