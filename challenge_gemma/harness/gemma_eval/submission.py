"""The submission: a declarative engine config, checked before anything is loaded.

A submission folder holds `submission.json` (format in
`challenge_gemma/schemas/gemma-submission.schema.json`) and, optionally, the weights it points
at. The config names a model (a Hub repository id, or a `./relative` folder inside the
submission), vLLM engine arguments and a speculative-decoding config. Every key must be on the
allowlist below; a denylist names the settings known to be lossy or to break the measurement,
with the reason, because an allowlist miss alone would not tell a participant *why*. Settings the
evaluator owns (tokenization, prefix caching, logprob mode, statistics) may be left out or set to
the evaluator's value, never to another one.

Checking never raises for bad input: it returns every reason at once, and the harness writes them
into an invalid summary.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "submission.json"
MAX_CONFIG_BYTES = 64 * 1024
MAX_DEPTH = 6
FORMAT = "gemma-submission"

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_REVISION = re.compile(r"^(?:[0-9a-f]{40}|[A-Za-z0-9][A-Za-z0-9_.-]{0,99})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

Check = Callable[[Any], str | None]


def _enum(*allowed: Any) -> Check:
    return lambda v: None if v in allowed and not isinstance(v, bool) else f"must be one of {list(allowed)}"


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _int(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"must be an integer from {lo} to {hi}"

    return check


def _num(lo: float, hi: float) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
        return None if ok else f"must be a number from {lo} to {hi}"

    return check


def _name(v: Any) -> str | None:
    return None if isinstance(v, str) and _NAME.match(v) else f"must be a lowercase name matching {_NAME.pattern}"


def _json_object(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be an object"


def _revision(v: Any) -> str | None:
    return None if isinstance(v, str) and _REVISION.match(v) else "must be a commit hash or a branch or tag name"


def _modalities(v: Any) -> str | None:
    # Zeroing a modality skips loading its encoder, a memory trick the rules forbid: the model
    # must stay the whole multimodal model.
    if not isinstance(v, dict) or not v:
        return "must be an object of modality limits"
    for name, limit in v.items():
        count = limit.get("count") if isinstance(limit, dict) else limit
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            return f"must keep every modality enabled ({name!r} would be {limit!r}); zero limits are not allowed"
    return None


# vLLM 0.33 engine arguments a submission may set, with the values allowed.
ENGINE_ARGS: dict[str, Check] = {
    "dtype": _enum("auto", "bfloat16", "float16", "half", "float32"),
    "quantization": _name,
    "kv_cache_dtype": _enum("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"),
    "max_model_len": _int(1, 131072),  # the lower bound comes from the parameters, checked below
    "gpu_memory_utilization": _num(0.05, 0.98),
    "kv_cache_memory_bytes": _int(1, 1 << 40),
    "enforce_eager": _boolean,
    "compilation_config": lambda v: (
        None if isinstance(v, dict | int) and not isinstance(v, bool) else "must be an object"
    ),
    "attention_config": _json_object,
    "max_num_seqs": _int(1, 1024),
    "max_num_batched_tokens": _int(16, 65536),
    "block_size": _enum(8, 16, 32, 64, 128, 256),
    "async_scheduling": _boolean,
    "enable_chunked_prefill": _boolean,
    "cpu_offload_gb": _num(0, 64),
    "model_impl": _enum("auto", "vllm", "transformers"),
    "load_format": _enum("auto", "safetensors", "pt", "npcache", "gguf", "bitsandbytes", "sharded_state"),
    "limit_mm_per_prompt": _modalities,
    "tensor_parallel_size": _enum(1),
    "pipeline_parallel_size": _enum(1),
}

# Speculative-decoding keys a submission may set.
SPECULATIVE_ARGS: dict[str, Check] = {
    "model": lambda v: None if isinstance(v, str) else "must be a Hub repository id or a ./relative folder",
    "revision": _revision,
    "method": _enum("mtp", "eagle", "eagle3", "draft_model", "ngram", "suffix", "medusa", "mlp_speculator", "dspark"),
    "num_speculative_tokens": _int(1, 16),
    "draft_tensor_parallel_size": _enum(1),
    "quantization": _name,
    "attention_backend": lambda v: None if isinstance(v, str) and v.isidentifier() else "must be a backend name",
    "rejection_sample_method": _enum("standard"),  # others are denied below, with their reason
    "draft_sample_method": _enum("greedy"),
    "parallel_drafting": _boolean,
    "prompt_lookup_min": _int(1, 64),
    "prompt_lookup_max": _int(1, 64),
    "suffix_decoding_max_tree_depth": _int(1, 256),
    "suffix_decoding_max_cached_requests": _int(0, 100000),
    "suffix_decoding_max_spec_factor": _num(0, 64),
    "suffix_decoding_min_token_prob": _num(0, 1),
}

# Settings the evaluator sets itself; a submission may only repeat the evaluator's value.
EVALUATOR_OWNED: dict[str, tuple[Any, str]] = {
    "enable_prefix_caching": (False, "prefix caching is forced off: timed passes repeat the same prompts"),
    "logprobs_mode": ("raw_logprobs", "PPL and the decode checks need raw log-probabilities"),
    "disable_log_stats": (False, "per-request engine statistics feed the diagnostics"),
    "seed": (0, "the evaluator fixes the seed"),
    "max_logprobs": (20, "the evaluator sets the logprob limit"),
    "per_request_spec_decode_metrics": ("summary", "the evaluator reads speculative-decoding counters"),
    "tokenizer": (None, "the evaluator owns tokenization: prompts arrive as token ids"),
    "tokenizer_revision": (None, "the evaluator owns tokenization"),
    "tokenizer_mode": (None, "the evaluator owns tokenization"),
    "skip_tokenizer_init": (None, "the evaluator decodes spot-check answers with its own tokenizer"),
}

# Known lossy or measurement-breaking settings, each with the reason it is refused.
DENIED: dict[str, str] = {
    "logits_processors": "custom logits processors can change greedy choices on the decode path only",
    "trust_remote_code": "it would run code from a model repository inside the evaluator",
    "hf_overrides": "it rewrites the model's architecture config; ship a checkpoint instead",
    "worker_cls": "custom worker code is not a declarative setting",
    "worker_extension_cls": "custom worker code is not a declarative setting",
    "distributed_executor_backend": "one GPU, one process layout: the evaluator chooses it",
    "generation_config": "sampling is fixed by the evaluator (greedy, explicit parameters)",
    "spec_method": "write speculative settings under speculative_config",
    "spec_model": "write speculative settings under speculative_config",
    "spec_tokens": "write speculative settings under speculative_config",
    "speculative_config": "write speculative settings under the top-level speculative_config key",
    "model": "the model is the top-level model key",
    "revision": "the revision is the top-level revision key",
}

SPECULATIVE_DENIED: dict[str, str] = {
    "rejection_sample_method": "only 'standard' rejection sampling keeps the target model's greedy output; "
    "'synthetic' accepts drafts at preset rates regardless of correctness and 'fly'/'block' relax acceptance",
    "enable_adaptive_verification": "not shown to be lossless; ask the organizers to review it first",
    "code_revision": "remote code is not allowed",
    "trust_remote_code": "it would run code from a model repository inside the evaluator",
}

_DENIED_PREFIXES = {
    "synthetic_": "synthetic acceptance settings fake draft acceptance (a benchmarking knob, lossy)",
    "fly_": "'fly' acceptance settings relax draft verification (documented as lossy)",
}

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
    """The outcome: a submission, or every reason it was refused (and the digest either way)."""

    submission: Submission | None
    reasons: list[str]
    sha256: str | None


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
    )


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
    if revision is not None and (problem := _revision(revision)):
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
        if (why := _denied(key)) is not None:
            reasons.append(f"{where}: denied: {why}")
        elif key in EVALUATOR_OWNED:
            expected, why = EVALUATOR_OWNED[key]
            if expected is None or value != expected or isinstance(value, bool) != isinstance(expected, bool):
                shown = "left out" if expected is None else json.dumps(expected)
                reasons.append(f"{where} = {json.dumps(value)}: denied: {why}; it must be {shown}")
        elif key in ENGINE_ARGS:
            if problem := ENGINE_ARGS[key](value):
                reasons.append(f"{where}: {problem}")
        else:
            reasons.append(
                f"{where}: not on the allowlist of engine arguments; allowed: {', '.join(sorted(ENGINE_ARGS))}"
            )
    length = args.get("max_model_len")
    if isinstance(length, int) and not isinstance(length, bool) and length < min_model_len:
        reasons.append(
            f"engine_args.max_model_len: {length} is below {min_model_len}, the longest request the protocol makes"
        )


def _check_speculative(spec: Any, root: Path, reasons: list[str], labels: dict[str, str]) -> dict[str, Any] | None:
    if not isinstance(spec, dict):
        reasons.append("speculative_config: must be an object")
        return None
    out = dict(spec)
    for key, value in spec.items():
        where = f"speculative_config.{key}"
        prefix_reason = next((why for p, why in _DENIED_PREFIXES.items() if key.startswith(p)), None)
        if prefix_reason:
            reasons.append(f"{where}: denied: {prefix_reason}")
        elif key == "rejection_sample_method" and value != "standard":
            reasons.append(f"{where} = {json.dumps(value)}: denied: {SPECULATIVE_DENIED[key]}")
        elif key in SPECULATIVE_DENIED and key != "rejection_sample_method":
            reasons.append(f"{where}: denied: {SPECULATIVE_DENIED[key]}")
        elif key not in SPECULATIVE_ARGS:
            reasons.append(f"{where}: not on the allowlist; allowed: {', '.join(sorted(SPECULATIVE_ARGS))}")
        elif key == "model":
            resolved, label = _check_model(value, root, where, reasons)
            out["model"] = resolved
            if label:
                labels[resolved] = label
        elif problem := SPECULATIVE_ARGS[key](value):
            reasons.append(f"{where}: {problem}")
    if "model" not in spec and "method" not in spec:
        reasons.append("speculative_config: needs a draft model or a method")
    return out


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


def _denied(key: str) -> str | None:
    if key in DENIED:
        return DENIED[key]
    for prefix, why in _DENIED_PREFIXES.items():
        if key.startswith(prefix):
            return why
    return None


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
    kwargs.update({key: value for key, (value, _) in EVALUATOR_OWNED.items() if value is not None})
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
