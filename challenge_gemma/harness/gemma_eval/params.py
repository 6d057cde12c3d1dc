"""Every number the evaluator measures or judges by, declared once with its default and its reason.

Three kinds of parameters. *Protocol* parameters define what is measured (512 new tokens, 8
warmups, up to 3 passes); changing one makes a run non-standard, and a non-standard run never
ranks. *Threshold* parameters decide validity (the self-consistency margin, the agreement gate,
the spot-check drop limits); their defaults are educated guesses until calibrated on a GPU, so the
organizers may set them in a `calibration.json` beside the evaluation data (CALIBRATION.md says
how to measure each). *Budget* parameters follow the job's timeout (`--time-budget-s`). A
submission can set none of them. Every summary records the full set.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gemma_eval.errors import DataError

Kind = Literal["protocol", "threshold", "budget"]


def _p(default: Any, kind: Kind, doc: str) -> Any:
    return field(default=default, metadata={"kind": kind, "doc": doc})


@dataclass(frozen=True)
class Params:
    """The evaluator's parameters; see each field's `doc` metadata, rendered in CALIBRATION.md."""

    # The TPS protocol.
    output_len: int = _p(512, "protocol", "New tokens per timed request, EOS ignored; any other count invalidates.")
    warmup_requests: int = _p(8, "protocol", "Unscored full-length requests before timing (compile, CUDA graphs).")
    max_passes: int = _p(3, "protocol", "Most timed passes over the prompt set; the score is their median.")
    plan_after_prompts: int = _p(16, "protocol", "Prompts of the first pass timed before the pass count is planned.")
    time_budget_s: float = _p(2400.0, "budget", "Seconds the whole run may take: the job timeout minus a margin.")
    reserve_s: float = _p(300.0, "budget", "Seconds kept for PPL, the decode checks and the summary.")
    min_model_len: int = _p(4096, "protocol", "Smallest max_model_len a submission may set (prompt + spot output).")
    default_max_num_batched_tokens: int = _p(
        512, "protocol", "Set when a submission leaves it out: bounds the full-vocabulary rows of prompt logprobs."
    )
    spot_max_new_tokens: int = _p(1024, "protocol", "Token limit of a spot-check answer (stops at EOS).")
    bootstrap_resamples: int = _p(2000, "protocol", "Bootstrap resamples of prompts for the TPS interval.")
    bootstrap_seed: int = _p(0, "protocol", "Seed of the bootstrap, so a summary can be recomputed exactly.")
    ci_level: float = _p(0.95, "protocol", "Coverage of the bootstrap interval.")
    # Perplexity.
    ppl_cap_rel: float = _p(0.05, "threshold", "Allowed PPL increase over the stored bf16 PPL when no cap is given.")
    ppl_record_ratio_max: float = _p(1.5, "threshold", "Largest per-record PPL ratio to bf16 (catches pruned vocab).")
    # Greedy self-consistency.
    consistency_margin_nats: float = _p(
        0.1, "threshold", "A greedy token that is not the prefill top-1 counts as a violation beyond this margin."
    )
    consistency_max_rate: float = _p(0.002, "threshold", "Largest share of generated positions that may violate.")
    consistency_max_per_prompt: int = _p(3, "threshold", "Most violations any one prompt may have.")
    # Agreement with the stored bf16 greedy outputs.
    agreement_top1_min: float = _p(0.90, "threshold", "Smallest teacher-forced top-1 agreement with bf16 outputs.")
    # Generative spot checks.
    spot_drop_points: float = _p(5.0, "threshold", "A drop beyond this many points fails when also significant.")
    spot_alpha: float = _p(0.05, "threshold", "One-sided significance level of the exact McNemar test.")
    spot_drop_points_hard: float = _p(12.0, "threshold", "A drop beyond this many points fails outright.")
    spot_expected_tokens: int = _p(600, "threshold", "Mean spot-check answer length, for planning the time budget.")

    def __post_init__(self) -> None:
        problems = [f"{name}: {why}" for name, why in _range_problems(self)]
        if problems:
            raise DataError("invalid evaluator parameters: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        """Every parameter by name, for the summary."""
        return dataclasses.asdict(self)

    def overridden(self) -> list[str]:
        """Names whose value differs from the default, in declaration order."""
        default = Params()
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(default, f.name)]

    def nonstandard(self) -> list[str]:
        """Protocol parameters that differ from the default: such a run measures something else."""
        kinds = kinds_by_name()
        return [name for name in self.overridden() if kinds[name] == "protocol"]

    def with_overrides(self, overrides: Mapping[str, Any], *, allowed: Kind | None = None, source: str) -> Params:
        """A copy with `overrides` applied, type-checked against the declared fields.

        Args:
            overrides: Parameter names and values.
            allowed: Only parameters of this kind may be set; `None` allows both kinds.
            source: Where the overrides came from, named in error messages.

        Raises:
            DataError: An unknown name, a value of the wrong type, a parameter of the wrong kind,
                or a value out of range.
        """
        kinds = kinds_by_name()
        types = {f.name: type(getattr(self, f.name)) for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in kinds:
                raise DataError(f"{source}: unknown parameter {name!r}; known: {', '.join(sorted(kinds))}")
            if allowed is not None and kinds[name] != allowed:
                raise DataError(f"{source}: {name!r} is a {kinds[name]} parameter; only {allowed} parameters here")
            changes[name] = _coerce(name, value, types[name], source)
        return dataclasses.replace(self, **changes)


def kinds_by_name() -> dict[str, Kind]:
    """Each parameter's kind."""
    return {f.name: f.metadata["kind"] for f in dataclasses.fields(Params)}


def describe() -> list[tuple[str, Kind, Any, str]]:
    """(name, kind, default, doc) of every parameter, in declaration order."""
    return [(f.name, f.metadata["kind"], f.default, f.metadata["doc"]) for f in dataclasses.fields(Params)]


def load_overrides(path: Path) -> dict[str, Any]:
    """Read a JSON object of parameter overrides.

    Raises:
        DataError: The file is not a JSON object.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path.name}: cannot read parameter overrides: {exc}") from exc
    if not isinstance(document, dict):
        raise DataError(f"{path.name}: parameter overrides must be a JSON object")
    return document


def _coerce(name: str, value: Any, expected: type, source: str) -> Any:
    # JSON has one number type: accept an integer for a float field, never a bool for a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{source}: {name} must be a number, not {type(value).__name__}")
    if expected is int:
        if isinstance(value, float) and not value.is_integer():
            raise DataError(f"{source}: {name} must be a whole number, not {value}")
        return int(value)
    return float(value)


def _range_problems(params: Params) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if not math.isfinite(value):
            out.append((f.name, "must be finite"))
        elif f.name != "bootstrap_seed" and value <= 0:
            out.append((f.name, "must be positive"))
    for name in ("ci_level", "consistency_max_rate", "agreement_top1_min", "spot_alpha"):
        if not 0 < getattr(params, name) < 1:
            out.append((name, "must lie strictly between 0 and 1"))
    if params.bootstrap_seed < 0:
        out.append(("bootstrap_seed", "must not be negative"))
    if params.spot_drop_points_hard < params.spot_drop_points:
        out.append(("spot_drop_points_hard", "must be at least spot_drop_points"))
    return out
