"""The agents' onboarding README of a collab: the values its template needs, and the filters it uses.

The text is `readme.md.j2` beside this module, read top to bottom. Every name and number in it
comes from the loaded spec (ids, limits, scoring, verification, jobs), so the README and the
backend enforce the same rules; the only text of its own is the mechanics that do not vary
between collabs (the two-bucket model, the API's shapes). Values are placed in one of two ways:
as code (`code`), for ids and field names, or as plain text (`plain`), for titles, taglines,
labels and descriptions, with every character that could open Markdown or HTML structure escaped
and line breaks folded, so a spec value can never start a heading, a list, a table row, a link or
a tag. What takes more than a filter (the tie rule's numbers, the result fields, the example
frontmatter) is computed here. The challenge type's task section is Markdown written by the
type's authors and is included as it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from provision.naming import space_url
from provision.spec.model import ChallengeSpec, Metric, Noise, Rate
from provision.spec.schema import load_schema

#: The file an agent writes into its scratch bucket to prove it owns it (the backend reads it).
HANDSHAKE_FILE = "collab-handshake.txt"
#: Where the backend mirrors verdicts in the central bucket.
VERIFICATION_INDEX = "results/verification_status.json"
TEMPLATE = "readme.md.j2"

_PLAIN_SPECIALS = re.compile(r"([\\`*_\[\]<>|~#!&{}])")
_SPACES = re.compile(r"\s+")


def plain(text: object) -> str:
    """A value as inline plain text: one line, every Markdown/HTML-significant character escaped."""
    folded = _SPACES.sub(" ", str(text)).strip()
    return _PLAIN_SPECIALS.sub(r"\\\1", folded)


def code(text: object) -> str:
    """A value as an inline code span, whatever backticks it holds (one line)."""
    folded = _SPACES.sub(" ", str(text)).strip()
    fence = "`" * (max((len(m) for m in re.findall(r"`+", folded)), default=0) + 1)
    pad = " " if folded.startswith("`") or folded.endswith("`") else ""
    return f"{fence}{pad}{folded}{pad}{fence}"


def number(value: float) -> str:
    """A spec number as people write it: 30, 0.1, 2.42 (no trailing .0)."""
    if float(value).is_integer():
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return f"{value:g}"


def size(n: int) -> str:
    """Bytes in binary units: 32768 -> 32 KiB (with the exact count when it is not round)."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            amount = n / factor
            shown = f"{amount:g}" if amount.is_integer() else f"{amount:.1f}"
            return f"{shown} {unit}" + ("" if amount.is_integer() else f" ({n:,} bytes)")
    return f"{n} bytes"


def window(seconds: int) -> str:
    """A rate window in words: 3600 -> hour, 86400 -> 24 hours, 90 -> 90 seconds."""
    for unit, factor in (("hour", 3600), ("minute", 60)):
        if seconds % factor == 0:
            count = seconds // factor
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


def rate(limit: Rate) -> str:
    """A rate limit in words."""
    return f"at most {limit.limit} in any {window(limit.window_seconds)}"


def scratch_bucket_pattern(spec: ChallengeSpec, agent: str = "<agent_id>") -> str:
    """An agent's own bucket: `{org}/{slug}-{agent_id}` (the backend composes the same name)."""
    return f"{spec.challenge.org}/{spec.challenge.slug}-{agent}"


def tie_margin_words(noise: Noise, unit: str) -> str:
    """The tie rule in words, with its numbers worked out."""
    if noise.kind == "none":
        return "only exactly equal scores tie"
    base = max(noise.min_margin, noise.z * noise.sigma * math.sqrt(2))
    formula = f"max({number(noise.min_margin)}, {number(noise.z)} x {number(noise.sigma)} x sqrt 2)"
    if noise.kind == "relative":
        return (
            f"two scores tie when they differ by at most {formula} = {base:.4g} of the larger score ({base * 100:.3g}%)"
        )
    shown_unit = f" {plain(unit)}" if unit else ""
    return f"two scores tie when they differ by at most {formula} = {base:.4g}{shown_unit}"


def bounds(metric: Metric) -> str:
    """A metric's guardrail in words, its field as code: `` `ppl` ≤ 2.42 ``, or "no guardrail"."""
    guard = metric.guardrail
    if guard is None:
        return "no guardrail"
    parts = []
    if guard.min is not None:
        parts.append(f"{code(metric.field)} ≥ {number(guard.min)}")
    if guard.max is not None:
        parts.append(f"{code(metric.field)} ≤ {number(guard.max)}")
    return " and ".join(parts) if parts else "no guardrail"


def better(direction: str) -> str:
    """A scoring direction in words."""
    return "higher is better" if direction == "maximize" else "lower is better"


def _example_value(spec: ChallengeSpec, name: str) -> str:
    """A YAML value for a result field in the README's example: valid as written, in every guardrail.

    The score is 100 (or inside its metric's guardrail when it is also a metric); a metric is
    inside its guardrail (just under a maximum, just over a minimum, else 1); the track is the
    first one; any other required field is a line of text.
    """
    metric = next((m for m in spec.scoring.metrics if m.field == name), None)
    if metric is not None and metric.guardrail is not None:
        guard = metric.guardrail
        if guard.max is not None:
            low = guard.min if guard.min is not None else 0.0
            return number(round(low + (guard.max - low) * 0.95, 4))
        if guard.min is not None:
            return number(round(guard.min + max(abs(guard.min) * 0.05, 1.0), 4))
    if name == spec.scoring.score_field:
        return "100"
    if metric is not None:
        return "1"
    if name == "track" and spec.scoring.tracks:
        return spec.scoring.tracks[0].name
    return '"what you ran, in one line"'


def _agent_id_rule() -> str:
    description = load_schema()["$defs"]["agent_id"]["description"]
    return str(description).removeprefix("An agent's handle: ")


def _guards(spec: ChallengeSpec) -> str:
    """The verification guards in words, each bound with its field as code ("" when there are none)."""
    parts = []
    for guard in spec.verification.guards:
        sides = [f"{code(guard.field)} ≥ {number(guard.min)}" if guard.min is not None else ""]
        sides.append(f"{code(guard.field)} ≤ {number(guard.max)}" if guard.max is not None else "")
        parts.append(" and ".join(side for side in sides if side))
    return ", ".join(parts)


@dataclass(frozen=True)
class LocalSite:
    """Where a collab runs when it is rehearsed on one machine (`collab up`)."""

    backend: str  # the backend's URL, e.g. http://127.0.0.1:8000
    collab_dir: str  # the collab folder, which `collab bucket` acts on
    identity_file: str  # the local tokens, relative to the collab folder
    stand_in: tuple[str, ...] = ()  # the type's `cpu_args`: what local jobs pass the harness, e.g. --engine fake


def readme_values(spec: ChallengeSpec, task_section: str, local: LocalSite | None = None) -> dict[str, Any]:
    """Everything the template reads: the spec's sections, and the values worked out from them.

    Args:
        spec: The loaded, fully defaulted spec.
        task_section: The challenge type's task section (`ChallengeType.task_section(spec)`).
        local: For a rehearsal on one machine: the local backend and folders; None for the Hub.

    Returns:
        The template's variables: `local` and `bucket_cli` (`hf buckets`, or `collab bucket` for a
        local collab); `spec` and its sections (`challenge`, `storage`, `scoring`,
        `board`, `verification`, `jobs`); the addresses (`central`, `backend`, `scratch` and the
        same pattern for the shell, `scratch_env`, and for Python, `scratch_python`); the kit's
        file names; `score_unit` (" (unit)" or ""); `agent_id_rule` (from the schema);
        `other_required_fields` (required fields that are not the score, a metric or the track);
        `example_fields` (name and value of each frontmatter line of the example); `tie_rule`;
        `guards`; `quota_overrides` (sorted by agent); and the task section, stripped.
    """
    scoring = spec.scoring
    metric_fields = {m.field for m in scoring.metrics}
    return {
        "spec": spec,
        "challenge": spec.challenge,
        "storage": spec.storage,
        "scoring": scoring,
        "board": spec.board,
        "verification": spec.verification,
        "jobs": spec.jobs,
        "central": spec.storage.central_bucket,
        "backend": local.backend if local else space_url(spec.spaces.backend.id),
        "local": local,
        "bucket_cli": "collab bucket" if local else "hf buckets",
        "scratch": scratch_bucket_pattern(spec),
        "scratch_env": scratch_bucket_pattern(spec, "$AGENT_ID"),
        "scratch_python": scratch_bucket_pattern(spec, "{agent_id}"),
        "handshake_file": HANDSHAKE_FILE,
        "verification_index": VERIFICATION_INDEX,
        "score_unit": f" ({plain(scoring.unit)})" if scoring.unit else "",
        "agent_id_rule": _agent_id_rule(),
        "other_required_fields": [
            name
            for name in scoring.required_fields
            if name not in (scoring.score_field, "track") and name not in metric_fields
        ],
        "example_fields": [
            (name, _example_value(spec, name))
            for name in dict.fromkeys([scoring.score_field, *scoring.required_fields])
            if name != "track" or scoring.tracks
        ],
        "tie_rule": tie_margin_words(scoring.noise, scoring.unit),
        "guards": _guards(spec),
        "quota_overrides": sorted(spec.jobs.quota.overrides.items()),
        "task_section": task_section.strip(),
    }


# Markdown, not HTML: autoescaping would be the wrong escape, so every value goes through `plain`
# or `code` in the template instead. An undefined name is an error, never an empty string.
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701  # Markdown: `plain` and `code` escape, see above
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters.update(plain=plain, code=code, number=number, size=size, rate=rate, bounds=bounds, better=better)


def render_readme(spec: ChallengeSpec, task_section: str, local: LocalSite | None = None) -> str:
    """The onboarding README of one collab.

    Args:
        spec: The loaded, fully defaulted spec.
        task_section: The challenge type's task section (`ChallengeType.task_section(spec)`).
        local: For a rehearsal on one machine (`collab up`): the README names the local backend
            and `collab bucket`; None (the default) for the Hub.

    Returns:
        Markdown, ending with one newline.
    """
    return _ENVIRONMENT.get_template(TEMPLATE).render(readme_values(spec, task_section, local))
