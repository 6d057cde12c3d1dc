"""The submission: a declarative engine config, checked before anything is loaded.

A submission folder holds `submission.json` (format in
`challenge_gemma/schemas/gemma-submission.schema.json`) and, optionally, the weights it points
at. The config names a model (a Hub repository id, or a `./relative` folder inside the
submission), vLLM engine arguments and a speculative-decoding config. The rules for those come
from vLLM 0.33's own argument surface (`vllm_args.py`: the allowlist and the evaluator's own
settings; `denied.json`, read by `vllm_denied.py`: everything else, each with its reason): every
key must be on the allowlist, a refused key or value says why, and settings the evaluator owns
(tokenization, prefix caching, logprob mode, statistics) may be left out or set to the
evaluator's value, never to another one. `engine_kwargs` is the one assembly of the `vllm.LLM`
arguments, which every engine receives.

Checking never raises for bad input: it returns every reason at once, and the harness writes them
into an invalid summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemma_eval.vllm_args import (
    ENGINE_ARGS,
    EVALUATOR_OWNED,
    METHODS_NEEDING_MODEL,
    SPECULATIVE_ARGS,
    Check,
    Keys,
    evaluator_settings,
    revision_problem,
    speculative_methods,
)
from gemma_eval.vllm_denied import DENIED, SPECULATIVE_DENIED

CONFIG_NAME = "submission.json"
MAX_CONFIG_BYTES = 64 * 1024
MAX_DEPTH = 6
FORMAT = "gemma-submission"

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")

TOP_LEVEL = {"format", "version", "model", "revision", "engine_args", "speculative_config", "description"}


@dataclass(frozen=True)
class Submission:
    """A checked submission.

    Attributes:
        model: Hub repository id, or the absolute path of a folder inside the submission.
        model_label: How the model is shown in summaries (`submission:./weights` for local folders).
        revision: Model revision, if pinned.
        engine_args: Allowed engine arguments as written.
        speculative_config: Speculative-decoding settings, with a local draft model resolved.
        sha256: Digest of every file in the submission folder (names, sizes and contents).
    """

    model: str
    model_label: str
    revision: str | None
    engine_args: Mapping[str, Any]
    speculative_config: Mapping[str, Any] | None
    description: str
    sha256: str
    files: int
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmissionCheck:
    """The outcome: a submission, or every reason it was refused (and the digest either way).

    `notes` say what to fix that does not refuse the submission: a Hub model not pinned to a commit.
    """

    submission: Submission | None
    reasons: list[str]
    sha256: str | None
    notes: list[str] = field(default_factory=list)


def check_submission(folder: Path, *, min_model_len: int) -> SubmissionCheck:
    """Read and check a submission folder.

    Args:
        folder: The submission folder (mounted at /submission in a job).
        min_model_len: The smallest `max_model_len` the protocol needs.

    Returns:
        The submission, or `None` with the reasons; never raises for bad input.
    """
    digest, files, digest_problem = _digest(folder)
    if digest_problem:
        return SubmissionCheck(None, [digest_problem], digest)
    config = folder / CONFIG_NAME
    try:
        raw = config.read_bytes() if config.is_file() and not config.is_symlink() else None
    except OSError as exc:
        return SubmissionCheck(None, [f"{CONFIG_NAME}: cannot be read ({exc.strerror})"], digest)
    if raw is None:
        return SubmissionCheck(None, [f"{CONFIG_NAME}: missing; the submission folder must hold it"], digest)
    if len(raw) > MAX_CONFIG_BYTES:
        return SubmissionCheck(None, [f"{CONFIG_NAME}: {len(raw)} bytes, more than {MAX_CONFIG_BYTES}"], digest)
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        return SubmissionCheck(None, [f"{CONFIG_NAME}: not valid JSON ({exc})"], digest)
    reasons, submission = _check_document(doc, folder.resolve(), min_model_len)
    if submission is None:
        return SubmissionCheck(None, reasons, digest)
    return SubmissionCheck(
        Submission(**{**submission, "sha256": digest or "", "files": files}),
        reasons,
        digest,
        unpinned_notes(doc),
    )


def unpinned_notes(doc: Mapping[str, Any]) -> list[str]:
    """A note for each Hub model of a checked submission whose `revision` is not a commit hash.

    A branch or tag (or no revision: the repository's default branch) names whatever the
    repository holds when the model loads, so a re-run (verification, another agent building
    on the result) may load other weights than the ones measured. A `./folder` model is pinned
    by the submission's own digest.
    """
    notes = []
    speculative = doc.get("speculative_config")
    for where, holder in (("", doc), ("speculative_config.", speculative if isinstance(speculative, dict) else {})):
        model, revision = holder.get("model"), holder.get("revision")
        pinned = isinstance(revision, str) and _COMMIT.match(revision)
        if not isinstance(model, str) or not _HUB_ID.match(model) or pinned:
            continue
        now = "no revision" if revision is None else f"revision {revision!r} is a branch or tag, not a commit"
        notes.append(
            f"{where}revision: {where}model {model} is not pinned ({now}): a re-run loads whatever the repository "
            f"holds then, which may not be what this run measured; set {where}revision to the 40-hex commit "
            f"you measured (huggingface_hub: HfApi().model_info('{model}').sha)"
        )
    return notes


def _check_document(doc: Any, root: Path, min_model_len: int) -> tuple[list[str], dict[str, Any] | None]:
    if not isinstance(doc, dict):
        return [f"{CONFIG_NAME}: must be a JSON object"], None
    if (depth := _depth(doc)) > MAX_DEPTH:
        return [f"{CONFIG_NAME}: nested {depth} levels deep, more than {MAX_DEPTH}"], None
    reasons: list[str] = []
    if doc.get("format") != FORMAT or doc.get("version") != 1:
        reasons.append(f"format must be {FORMAT!r} and version 1")
    for key in sorted(set(doc) - TOP_LEVEL):
        reasons.append(f"{key}: unknown key; allowed: {', '.join(sorted(TOP_LEVEL))}")
    labels: dict[str, str] = {}
    model, label = _check_model(doc.get("model"), root, "model", reasons)
    if label:
        labels[model] = label
    revision = doc.get("revision")
    if revision is not None and (problem := revision_problem(revision)):
        reasons.append(f"revision: {problem}")
    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        reasons.append("description: must be text of at most 2000 characters")
    engine_args = doc.get("engine_args", {})
    if not isinstance(engine_args, dict):
        reasons.append("engine_args: must be an object")
        engine_args = {}
    _check_engine_args(engine_args, min_model_len, reasons)
    speculative = doc.get("speculative_config")
    if speculative is not None:
        speculative = _check_speculative(speculative, root, reasons, labels)
    if reasons:
        return reasons, None
    return [], {
        "model": model,
        "model_label": label or model,
        "revision": revision,
        "engine_args": dict(engine_args),
        "speculative_config": speculative,
        "description": description,
        "labels": labels,
    }


def _check_engine_args(args: Mapping[str, Any], min_model_len: int, reasons: list[str]) -> None:
    for key, value in args.items():
        where = f"engine_args.{key}"
        if key in EVALUATOR_OWNED:
            expected, why = EVALUATOR_OWNED[key]
            if expected is None or value != expected or isinstance(value, bool) != isinstance(expected, bool):
                shown = "left out" if expected is None else json.dumps(expected)
                reasons.append(f"{where} = {json.dumps(value)}: denied: {why}; it must be {shown}")
        else:
            _check_key(where, key, value, ENGINE_ARGS, DENIED, reasons)
    length = args.get("max_model_len")
    if isinstance(length, int) and not isinstance(length, bool) and length < min_model_len:
        reasons.append(
            f"engine_args.max_model_len: {length} is below {min_model_len}, the longest request the protocol makes"
        )


def _check_key(
    where: str,
    key: str,
    value: Any,
    allowed: Mapping[str, Check | Keys],
    denied: Mapping[str, str],
    reasons: list[str],
) -> None:
    """One key of an allowlisted object: allowed with a valid value, denied with its reason, or unknown."""
    if key in denied:
        reasons.append(f"{where}: denied: {denied[key]}")
    elif key not in allowed:
        reasons.append(f"{where}: unknown: vLLM 0.33 has no such setting; allowed: {', '.join(sorted(allowed))}")
    elif isinstance(rule := allowed[key], Keys):
        if rule.also is not None and rule.also(value) is None:
            return
        if not isinstance(value, dict):
            reasons.append(f"{where}: must be an object")
            return
        for sub, sub_value in value.items():
            _check_key(f"{where}.{sub}", sub, sub_value, rule.allowed, rule.denied, reasons)
    elif problem := rule(value):
        reasons.append(f"{where}: {problem}")


def _check_speculative(spec: Any, root: Path, reasons: list[str], labels: dict[str, str]) -> dict[str, Any] | None:
    if not isinstance(spec, dict):
        reasons.append("speculative_config: must be an object")
        return None
    out = dict(spec)
    before = len(reasons)
    for key, value in spec.items():
        where = f"speculative_config.{key}"
        if key == "model":
            resolved, label = _check_model(value, root, where, reasons)
            out["model"] = resolved
            if label:
                labels[resolved] = label
        else:
            _check_key(where, key, value, SPECULATIVE_ARGS, SPECULATIVE_DENIED, reasons)
    if "model" not in spec and "method" not in spec:
        reasons.append("speculative_config: needs a draft model or a method")
    elif len(reasons) == before:
        _check_method(out, reasons)
    return out


def _check_method(spec: Mapping[str, Any], reasons: list[str]) -> None:
    """The method vLLM 0.33 will run, resolved its way from the config as written, must be allowed."""
    methods, how = speculative_methods(spec)
    for method in methods:
        if method in METHODS_NEEDING_MODEL and "model" not in spec:
            reasons.append(f"speculative_config: method {method!r} needs a draft model; name it in `model`")
        elif problem := SPECULATIVE_ARGS["method"](method):
            may = "would" if len(methods) == 1 else "may"
            reasons.append(f"speculative_config: vLLM 0.33 {may} run method {method!r} here ({how}); {problem}")


def _check_model(value: Any, root: Path, where: str, reasons: list[str]) -> tuple[str, str | None]:
    """A Hub id as is, or a `./folder` inside the submission resolved to an absolute path."""
    if not isinstance(value, str) or not value:
        reasons.append(f"{where}: required: a Hub repository id (org/name) or a ./relative folder")
        return "", None
    if value.startswith("./"):
        return _check_local(value, root, where, reasons)
    if _HUB_ID.match(value) and ".." not in value:
        return value, None
    reasons.append(
        f"{where}: {value[:100]!r} is neither a Hub repository id (org/name) "
        "nor a ./relative folder inside the submission"
    )
    return "", None


def _check_local(value: str, root: Path, where: str, reasons: list[str]) -> tuple[str, str | None]:
    relative = value[2:]
    parts = relative.split("/")
    if "\\" in value or "\x00" in value or any(p in ("", ".", "..") for p in parts) or len(value) > 255:
        reasons.append(f"{where}: {value[:100]!r}: a local folder is ./name[/name...] without '..', '.' or empty parts")
        return "", None
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        reasons.append(f"{where}: {value!r} resolves outside the submission folder")
        return "", None
    if not target.is_dir():
        reasons.append(f"{where}: {value!r} is not a folder in the submission")
        return "", None
    return str(target), f"submission:{value}"


def _digest(folder: Path) -> tuple[str | None, int, str | None]:
    """SHA-256 over every file's relative path, size and contents; links are recorded, not followed."""
    if not folder.is_dir():
        return None, 0, "the submission folder does not exist"
    total = hashlib.sha256()
    files = 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                total.update(f"link {rel} -> {os.readlink(path)}\n".encode())
                continue
            try:
                total.update(f"file {rel} {path.stat().st_size} {_file_sha(path)}\n".encode())
            except OSError as exc:
                return None, files, f"{rel}: cannot be read ({exc.strerror})"
            files += 1
    return total.hexdigest(), files, None


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def engine_kwargs(submission: Submission, *, default_max_num_batched_tokens: int) -> dict[str, Any]:
    """The `vllm.LLM` keyword arguments: the submission's allowed settings plus the evaluator's own.

    The one assembly every engine receives: vLLM starts with exactly these, and the CPU stand-ins
    record them (and refuse what vLLM 0.33 would refuse at start), so a run on a stand-in tests
    the arguments a GPU run would use.

    Args:
        submission: A checked submission.
        default_max_num_batched_tokens: Used when the submission leaves it out.

    Returns:
        Keyword arguments for `vllm.LLM`.
    """
    kwargs: dict[str, Any] = {"model": submission.model, **submission.engine_args}
    if submission.revision:
        kwargs["revision"] = submission.revision
    if submission.speculative_config:
        kwargs["speculative_config"] = dict(submission.speculative_config)
    kwargs.setdefault("max_num_batched_tokens", default_max_num_batched_tokens)
    kwargs.update(evaluator_settings(speculative=bool(submission.speculative_config)))
    return kwargs


def sanitize(kwargs: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """Engine arguments safe to publish: local paths shown as `submission:./...`, never as this machine's paths."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return labels.get(value, value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return {key: clean(value) for key, value in kwargs.items()}
