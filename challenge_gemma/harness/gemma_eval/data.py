"""Reading the evaluation data: prompts, reference continuations, bf16 baselines, spot-check items.

One folder holds one set (the public one in the harness, the private one mounted at /private):

    prompts.json              the timed prompts and the warmup pool, pre-tokenized
    references.json           contexts and reference continuations for teacher-forced PPL
    baselines/<family>.json   bf16 greedy outputs, per-record NLL and spot correctness of one model family
    spot_items.json           generative spot-check items (private sets only)
    calibration.json          threshold overrides measured by the organizers (optional)

The JSON Schemas in `challenge_gemma/schemas/gemma-*.schema.json` define the formats; this module
checks the same rules with the standard library alone, because the job image need not have
jsonschema, and the tests hold the two to agreement. Every file is hashed for the summary's
provenance.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from gemma_eval.errors import DataError

SETS = ("sample", "public", "private")
SPOT_TASKS = ("gpqa_diamond", "mmlu_pro")
ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Prompt:
    """One timed (or warmup) prompt: the evaluator's token ids, and a gold letter when it has one."""

    id: str
    source: str
    token_ids: tuple[int, ...]
    gold: str | None = None


@dataclass(frozen=True)
class PromptSet:
    set: str
    tokenizer: str
    items: tuple[Prompt, ...]
    warmup: tuple[Prompt, ...]
    stop_token_ids: tuple[int, ...]
    sha256: str


@dataclass(frozen=True)
class Reference:
    """A context and its reference continuation; only the continuation is scored."""

    id: str
    context: tuple[int, ...]
    target: tuple[int, ...]


@dataclass(frozen=True)
class ReferenceSet:
    set: str
    tokenizer: str
    reference_model: str
    items: tuple[Reference, ...]
    sha256: str


@dataclass(frozen=True)
class SpotItem:
    id: str
    task: str
    token_ids: tuple[int, ...]
    gold: str
    num_choices: int


@dataclass(frozen=True)
class SpotSet:
    set: str
    tokenizer: str
    stop_token_ids: tuple[int, ...]
    items: tuple[SpotItem, ...]
    sha256: str


@dataclass(frozen=True)
class RecordNll:
    nll_sum: float
    num_tokens: int


@dataclass(frozen=True)
class Baseline:
    """What the bf16 model of one family produced on this set, stored once by the organizers."""

    set: str
    family: str
    tokenizer: str
    output_len: int
    outputs: Mapping[str, tuple[int, ...]]
    ppl: float
    ppl_records: Mapping[str, RecordNll]
    spot: Mapping[str, bool]
    sha256: str


@dataclass(frozen=True)
class EvalData:
    """One evaluation set, loaded and cross-checked."""

    folder_set: str
    prompts: PromptSet
    references: ReferenceSet
    spot: SpotSet | None
    calibration: Mapping[str, Any]
    calibration_sha256: str | None


def load_eval_data(folder: Path) -> EvalData:
    """Load one evaluation set, all but its baselines (which depend on the engine's family).

    Args:
        folder: The set's folder (layout in the module docstring).

    Raises:
        DataError: A required file is missing, a file is malformed, or the files disagree.
    """
    prompts = read_prompts(folder / "prompts.json")
    references = read_references(folder / "references.json")
    spot_path = folder / "spot_items.json"
    spot = read_spot_items(spot_path) if spot_path.is_file() else None
    calibration_path = folder / "calibration.json"
    calibration: Mapping[str, Any] = {}
    calibration_sha = None
    if calibration_path.is_file():
        calibration, calibration_sha = read_calibration(calibration_path)
    data = EvalData(prompts.set, prompts, references, spot, calibration, calibration_sha)
    _check_files_agree(data, {"references.json": references.tokenizer} | _spot_tokenizer(spot))
    return data


def load_baseline(folder: Path, data: EvalData, family: str) -> Baseline | None:
    """The stored bf16 baseline of `family` for this set, or None when the folder has none.

    Raises:
        DataError: The baseline is malformed or does not cover the set.
    """
    path = folder / "baselines" / f"{family}.json"
    if not path.is_file():
        return None
    baseline = read_baseline(path)
    _check_baseline(baseline, data, family)
    return baseline


def read_prompts(path: Path) -> PromptSet:
    doc, sha = _read(path, "gemma-prompts")
    items = _items(doc, "items", path, _prompt)
    warmup = _items(doc, "warmup", path, _prompt)
    _unique_ids([*items, *warmup], path)
    stops = _ids(doc.get("stop_token_ids", []), f"{path.name}: stop_token_ids")
    return PromptSet(_set(doc, path), _str(doc, "tokenizer", path), items, warmup, stops, sha)


def read_references(path: Path) -> ReferenceSet:
    doc, sha = _read(path, "gemma-references")
    items = _items(doc, "items", path, _reference)
    _unique_ids(items, path)
    return ReferenceSet(_set(doc, path), _str(doc, "tokenizer", path), _str(doc, "reference_model", path), items, sha)


def read_spot_items(path: Path) -> SpotSet:
    doc, sha = _read(path, "gemma-spot-items")
    stops = _ids(doc.get("stop_token_ids"), f"{path.name}: stop_token_ids")
    items = _items(doc, "items", path, _spot_item)
    _unique_ids(items, path)
    return SpotSet(_set(doc, path), _str(doc, "tokenizer", path), stops, items, sha)


def read_baseline(path: Path) -> Baseline:
    doc, sha = _read(path, "gemma-baseline")
    where = path.name
    outputs = {
        _id(o, f"{where}: outputs"): _ids(o.get("token_ids"), f"{where}: outputs") for o in _list(doc, "outputs", path)
    }
    records: dict[str, RecordNll] = {}
    for r in _list(doc, "ppl_records", path):
        nll, n = r.get("nll_sum"), r.get("num_tokens")
        if not _number(nll) or nll < 0 or not _integer(n) or n < 1:
            raise DataError(f"{where}: ppl_records entries need nll_sum >= 0 and num_tokens >= 1: {_short(r)}")
        records[_id(r, f"{where}: ppl_records")] = RecordNll(float(nll), int(n))
    spot: dict[str, bool] = {}
    for s in _list(doc, "spot", path, required=False):
        if not isinstance(s.get("correct"), bool):
            raise DataError(f"{where}: spot entries need a boolean 'correct': {_short(s)}")
        spot[_id(s, f"{where}: spot")] = s["correct"]
    ppl, output_len = doc.get("ppl"), doc.get("output_len")
    if not _number(ppl) or ppl < 1:
        raise DataError(f"{where}: ppl must be a finite number >= 1")
    if not _integer(output_len) or output_len < 1:
        raise DataError(f"{where}: output_len must be a positive integer")
    return Baseline(
        _set(doc, path),
        _str(doc, "family", path),
        _str(doc, "tokenizer", path),
        int(output_len),
        outputs,
        float(ppl),
        records,
        spot,
        sha,
    )


def read_calibration(path: Path) -> tuple[dict[str, Any], str]:
    doc, sha = _read(path, "gemma-calibration")
    params = doc.get("params")
    if not isinstance(params, dict):
        raise DataError(f"{path.name}: params must be an object of threshold values")
    return params, sha


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def _read(path: Path, fmt: str) -> tuple[dict[str, Any], str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"{path.name}: missing from the evaluation set folder") from exc
    except OSError as exc:
        raise DataError(f"{path.name}: cannot read: {exc}") from exc
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise DataError(f"{path.name}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt or doc.get("version") != 1:
        raise DataError(f"{path.name}: expected a JSON object with format {fmt!r} and version 1")
    return doc, sha256_bytes(raw)


def _set(doc: Mapping[str, Any], path: Path) -> str:
    value = doc.get("set")
    if value not in SETS:
        raise DataError(f"{path.name}: set must be one of {', '.join(SETS)}, not {value!r}")
    return str(value)


def _str(doc: Mapping[str, Any], key: str, path: Path) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise DataError(f"{path.name}: {key} must be a non-empty string")
    return value


def _list(doc: Mapping[str, Any], key: str, path: Path, *, required: bool = True) -> list[dict[str, Any]]:
    value = doc.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DataError(f"{path.name}: {key} must be a list of objects")
    return value


def _items(doc: Mapping[str, Any], key: str, path: Path, parse: Any) -> tuple[Any, ...]:
    entries = _list(doc, key, path)
    if key == "items" and not entries:
        raise DataError(f"{path.name}: items must not be empty")
    return tuple(parse(e, f"{path.name}: {key}") for e in entries)


def _id(entry: Mapping[str, Any], where: str) -> str:
    value = entry.get("id")
    if not isinstance(value, str) or not ITEM_ID.match(value):
        raise DataError(f"{where}: id must match {ITEM_ID.pattern}, not {value!r}")
    return value


def _ids(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(_integer(v) and v >= 0 for v in value):
        raise DataError(f"{where}: token ids must be a list of non-negative integers")
    return tuple(value)


def _nonempty_ids(value: Any, where: str) -> tuple[int, ...]:
    ids = _ids(value, where)
    if not ids:
        raise DataError(f"{where}: token ids must not be empty")
    return ids


def _prompt(entry: Mapping[str, Any], where: str) -> Prompt:
    item_id = _id(entry, where)
    gold = entry.get("gold")
    if gold is not None and (not isinstance(gold, str) or gold not in LETTERS):
        raise DataError(f"{where} {item_id}: gold must be one letter A-J")
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise DataError(f"{where} {item_id}: source must be a non-empty string")
    return Prompt(item_id, source, _nonempty_ids(entry.get("prompt_token_ids"), f"{where} {item_id}"), gold)


def _reference(entry: Mapping[str, Any], where: str) -> Reference:
    item_id = _id(entry, where)
    return Reference(
        item_id,
        _nonempty_ids(entry.get("context_token_ids"), f"{where} {item_id} context"),
        _nonempty_ids(entry.get("target_token_ids"), f"{where} {item_id} target"),
    )


def _spot_item(entry: Mapping[str, Any], where: str) -> SpotItem:
    item_id = _id(entry, where)
    task, gold, n = entry.get("task"), entry.get("gold"), entry.get("num_choices")
    if task not in SPOT_TASKS:
        raise DataError(f"{where} {item_id}: task must be one of {', '.join(SPOT_TASKS)}")
    if not _integer(n) or not 2 <= n <= len(LETTERS):
        raise DataError(f"{where} {item_id}: num_choices must be an integer from 2 to {len(LETTERS)}")
    if not isinstance(gold, str) or gold not in LETTERS[:n]:
        raise DataError(f"{where} {item_id}: gold must be one of the first {n} letters")
    return SpotItem(item_id, task, _nonempty_ids(entry.get("prompt_token_ids"), f"{where} {item_id}"), gold, n)


def _unique_ids(items: Sequence[Prompt | Reference | SpotItem], path: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DataError(f"{path.name}: id {item.id!r} appears twice")
        seen.add(item.id)


def _spot_tokenizer(spot: SpotSet | None) -> dict[str, str]:
    return {"spot_items.json": spot.tokenizer} if spot else {}


def _check_files_agree(data: EvalData, tokenizers: Mapping[str, str]) -> None:
    for name, other in tokenizers.items():
        if other != data.prompts.tokenizer:
            raise DataError(f"{name}: tokenizer {other!r} differs from prompts.json's {data.prompts.tokenizer!r}")
    sets = {data.references.set} | ({data.spot.set} if data.spot else set())
    if sets != {data.prompts.set}:
        raise DataError(f"the files of one folder belong to different sets: {sorted(sets | {data.prompts.set})}")


def _check_baseline(baseline: Baseline, data: EvalData, family: str) -> None:
    name = f"baselines/{family}.json"
    if baseline.family != family:
        raise DataError(f"{name}: family is {baseline.family!r}")
    if baseline.set != data.prompts.set or baseline.tokenizer != data.prompts.tokenizer:
        raise DataError(f"{name}: belongs to set {baseline.set!r} with tokenizer {baseline.tokenizer!r}")
    missing = [p.id for p in data.prompts.items if p.id not in baseline.outputs]
    if missing:
        raise DataError(f"{name}: no output for prompt(s) {', '.join(missing[:5])}")
    missing = [r.id for r in data.references.items if r.id not in baseline.ppl_records]
    if missing:
        raise DataError(f"{name}: no ppl record for reference(s) {', '.join(missing[:5])}")
    if data.spot and (missing := [s.id for s in data.spot.items if s.id not in baseline.spot]):
        raise DataError(f"{name}: no spot result for item(s) {', '.join(missing[:5])}")


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
