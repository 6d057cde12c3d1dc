"""vLLM 0.33's arguments as the evaluator rules them: what a submission may set, what the evaluator sets.

A submission's `engine_args` become `vllm.LLM(...)` keyword arguments (through `EngineArgs`), and
its `speculative_config` becomes vLLM's `SpeculativeConfig`. Every key a submission may write is
on an allowlist here, with the values allowed; the open-ended objects (`compilation_config`,
`attention_config`) are allowlisted key by key, because vLLM silently drops keys it does not know
and some keys take import paths. What the evaluator owns may only repeat the evaluator's value.
Everything else vLLM 0.33 has is refused with its reason in `denied.json` (read by
`vllm_denied.py`). The names and values come from the vLLM wheel's source, recorded in
`challenge_gemma/vllm_surface/surface.json`; a test holds these tables and the engine's argument
assembly to that record.

Also here: the few start-up rules of vLLM's that the CPU stand-ins apply so that they refuse what
vLLM would (`start_problems`), and how vLLM 0.33 resolves the speculative method
(`speculative_methods`), so that the method that will run is the one that is checked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gemma_eval.vllm_denied import ATTENTION_DENIED, COMPILATION_DENIED, DENIED_VALUES, MTP_ALIAS

TOKENIZER = "google/gemma-4-E4B-it"

Check = Callable[[Any], str | None]

_REVISION = re.compile(r"^(?:[0-9a-f]{40}|[A-Za-z0-9][A-Za-z0-9_.-]{0,99})$")
_LAYER_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
_CUSTOM_OP = re.compile(r"^(?:all|none|[+-][a-z0-9_]{1,64})$")
_TORCH_OP = re.compile(r"^[a-z0-9_]{1,64}::[a-z0-9_]{1,96}$")
_MAX_LIST = 256

# The allowed values of each vLLM value set (the keys name `values` in surface.json).
ALLOWED_VALUES: dict[str, tuple[Any, ...]] = {
    "dtype": ("auto", "bfloat16", "float16", "half", "float32", "float"),
    "quantization": (
        "awq",
        "auto_awq",
        "awq_marlin",
        "gptq",
        "auto_gptq",
        "gptq_marlin",
        "compressed-tensors",
        "fp8",
        "modelopt",
        "modelopt_fp4",
        "modelopt_mxfp8",
        "modelopt_mixed",
        "humming",
        "quark",
        "torchao",
        "inc",
        "mxfp4",
        "fp8_per_tensor",
        "fp8_per_block",
        "fp8_per_channel",
        "int8_per_channel_weight_only",
        "nvfp4_per_token",
        "mxfp8",
    ),
    "kv_cache_dtype": ("auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2"),
    "load_format": ("auto", "hf", "safetensors", "pt", "npcache", "sharded_state"),
    "model_impl": ("auto", "vllm", "transformers"),
    "attention_backend": (
        "FLASH_ATTN",
        "FLASH_ATTN_DIFFKV",
        "TRITON_ATTN",
        "TRITON_ATTN_DIFFKV",
        "TRITON_FLASH_ATTN",
        "FLASHINFER",
        "TRITON_FLASHINFER",
        "FLEX_ATTENTION",
    ),
    "kv_cache_spec_kind": ("full_attention", "sliding_window"),
    "linear_backend": (
        "auto",
        "cutlass",
        "flashinfer_cutlass",
        "flashinfer_cutedsl",
        "flashinfer_trtllm",
        "flashinfer_cudnn",
        "flashinfer_b12x",
        "b12x",
        "marlin",
        "humming",
        "triton",
        "deep_gemm",
        "torch",
        "machete",
        "fbgemm",
        "conch",
        "exllama",
    ),
    "optimization_level": (0, 1, 2, 3),
    "performance_mode": ("balanced", "interactivity", "throughput"),
    "compilation_mode": (0, 1, 2, 3),
    "cudagraph_mode": ("NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"),
    "flash_attn_version": (2, 3, 4),
    "speculative_method": ("mtp", "eagle", "eagle3", "dflash", "dspark", "draft_model", "ngram", "ngram_gpu"),
    "rejection_sample_method": ("standard",),
    "draft_sample_method": ("greedy",),
}


@dataclass(frozen=True)
class Choice:
    """A value from one of vLLM's value sets: the allowed ones pass, the others are refused with their reason."""

    values: str

    def __call__(self, value: Any) -> str | None:
        allowed = ALLOWED_VALUES[self.values]
        if isinstance(value, str | int) and not isinstance(value, bool) and value in allowed:
            return None
        if isinstance(value, str) and value in (denied := DENIED_VALUES.get(self.values, {})):
            return f"{value!r} is refused: {denied[value]}"
        return f"must be one of {list(allowed)}"


def _enum(*allowed: Any) -> Check:
    return lambda v: None if v in allowed and not isinstance(v, bool) else f"must be one of {list(allowed)}"


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(lo: int, hi: int) -> Check:
    return lambda v: None if _is_int(v) and lo <= v <= hi else f"must be an integer from {lo} to {hi}"


def _num(lo: float, hi: float) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
        return None if ok else f"must be a number from {lo} to {hi}"

    return check


def _power_of_two(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        ok = _is_int(v) and lo <= v <= hi and v & (v - 1) == 0
        return None if ok else f"must be a power of two from {lo} to {hi}"

    return check


def _list_of(item: Check, what: str) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, list) and len(v) <= _MAX_LIST and all(item(x) is None for x in v)
        return None if ok else f"must be a list of at most {_MAX_LIST} {what}"

    return check


def _matching(pattern: re.Pattern[str]) -> Check:
    return lambda v: None if isinstance(v, str) and pattern.match(v) else f"must match {pattern.pattern}"


def revision_problem(v: Any) -> str | None:
    """Why `v` is not a commit hash or a branch or tag name, or None."""
    return None if isinstance(v, str) and _REVISION.match(v) else "must be a commit hash or a branch or tag name"


def _modalities(v: Any) -> str | None:
    # Zeroing a modality skips loading its encoder, a memory trick the rules forbid: the model
    # must stay the whole multimodal model.
    if not isinstance(v, dict) or not v:
        return "must be an object of modality limits"
    for name, limit in v.items():
        count = limit.get("count") if isinstance(limit, dict) else limit
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return f"must keep every modality enabled ({name!r} would be {limit!r}); zero limits are not allowed"
    return None


def _backend_per_kind(v: Any) -> str | None:
    if not isinstance(v, dict) or not v:
        return "must be an object from KV-cache kind to attention backend"
    for kind, backend in v.items():
        if problem := Choice("kv_cache_spec_kind")(kind) or Choice("attention_backend")(backend):
            return f"{kind!r}: {backend!r}: {problem}"
    return None


@dataclass(frozen=True)
class Keys:
    """An object whose keys are allowlisted one by one (a nested vLLM config)."""

    allowed: Mapping[str, Check]
    denied: Mapping[str, str]
    also: Check | None = None  # another accepted form of the whole value (compilation_config's integer mode)


COMPILATION_CONFIG: dict[str, Check] = {
    "mode": Choice("compilation_mode"),
    "cudagraph_mode": Choice("cudagraph_mode"),
    "cudagraph_capture_sizes": _list_of(_int(1, 65536), "integers from 1 to 65536"),
    "max_cudagraph_capture_size": _int(1, 65536),
    "cudagraph_num_of_warmups": _int(0, 16),
    "cudagraph_copy_inputs": _boolean,
    "compile_sizes": _list_of(
        lambda v: None if v == "cudagraph_capture_sizes" else _int(1, 65536)(v),
        "integers from 1 to 65536 or 'cudagraph_capture_sizes'",
    ),
    "compile_ranges_endpoints": _list_of(_int(1, 65536), "integers from 1 to 65536"),
    "use_inductor_graph_partition": _boolean,
    "ir_enable_torch_wrap": _boolean,
    "custom_ops": _list_of(_matching(_CUSTOM_OP), "'all', 'none', '+op' or '-op' entries"),
    "splitting_ops": _list_of(_matching(_TORCH_OP), "'namespace::op' names"),
}

ATTENTION_CONFIG: dict[str, Check] = {
    "backend": Choice("attention_backend"),
    "backend_per_kind": _backend_per_kind,
    "flash_attn_version": Choice("flash_attn_version"),
    "flash_attn_max_num_splits_for_cuda_graph": _int(1, 256),
    "use_trtllm_attention": _boolean,
    "disable_flashinfer_q_quantization": _boolean,
    "use_prefill_query_quantization": _boolean,
    "flex_attn_block_m": _power_of_two(16, 1024),
    "flex_attn_block_n": _power_of_two(16, 1024),
    "flex_attn_q_block_size": _power_of_two(16, 1024),
    "flex_attn_kv_block_size": _power_of_two(16, 1024),
}


NESTED = {
    "compilation_config": Keys(COMPILATION_CONFIG, COMPILATION_DENIED, also=Choice("compilation_mode")),
    "attention_config": Keys(ATTENTION_CONFIG, ATTENTION_DENIED),
}

# vLLM 0.33 engine arguments a submission may set, with the values allowed.
ENGINE_ARGS: dict[str, Check | Keys] = {
    "dtype": Choice("dtype"),
    "quantization": Choice("quantization"),
    "kv_cache_dtype": Choice("kv_cache_dtype"),
    "kv_cache_dtype_skip_layers": _list_of(_matching(_LAYER_PATTERN), "layer indices or attention kinds"),
    "max_model_len": _int(1, 131072),  # the lower bound comes from the parameters, checked by the caller
    "gpu_memory_utilization": _num(0.05, 0.98),
    "kv_cache_memory_bytes": _int(1, 1 << 40),
    "cpu_offload_gb": _num(0, 64),
    "enforce_eager": _boolean,
    "compilation_config": NESTED["compilation_config"],
    "attention_config": NESTED["attention_config"],
    "attention_backend": Choice("attention_backend"),
    "optimization_level": Choice("optimization_level"),
    "performance_mode": Choice("performance_mode"),
    "cudagraph_capture_sizes": _list_of(_int(1, 65536), "integers from 1 to 65536"),
    "max_cudagraph_capture_size": _int(1, 65536),
    "linear_backend": Choice("linear_backend"),
    "enable_flashinfer_autotune": _boolean,
    "max_num_seqs": _int(1, 1024),
    "max_num_batched_tokens": _int(16, 65536),
    "block_size": _enum(8, 16, 32, 64, 128, 256),
    "async_scheduling": _boolean,
    "enable_chunked_prefill": _boolean,
    "disable_cascade_attn": _boolean,
    "disable_hybrid_kv_cache_manager": _boolean,
    "stream_interval": _int(1, 1024),
    "model_impl": Choice("model_impl"),
    "load_format": Choice("load_format"),
    "limit_mm_per_prompt": _modalities,
    "tensor_parallel_size": _enum(1),
    "pipeline_parallel_size": _enum(1),
}

# Speculative-decoding keys a submission may set (`model` is checked as a model path by the caller).
SPECULATIVE_ARGS: dict[str, Check] = {
    "model": lambda v: None if isinstance(v, str) else "must be a Hub repository id or a ./relative folder",
    "revision": revision_problem,
    "method": Choice("speculative_method"),
    "num_speculative_tokens": _int(1, 16),
    "draft_tensor_parallel_size": _enum(1),
    "quantization": Choice("quantization"),
    "kv_cache_dtype": Choice("kv_cache_dtype"),
    "attention_backend": Choice("attention_backend"),
    "enforce_eager": _boolean,
    "rejection_sample_method": Choice("rejection_sample_method"),
    "draft_sample_method": Choice("draft_sample_method"),
    "parallel_drafting": _boolean,
    "disable_padded_drafter_batch": _boolean,
    "prompt_lookup_min": _int(1, 64),
    "prompt_lookup_max": _int(1, 64),
}

SPEC_METRICS = "summary"

# Settings the evaluator owns: a submission may repeat the value shown, or must leave it out (None).
EVALUATOR_OWNED: dict[str, tuple[Any, str]] = {
    "enable_prefix_caching": (False, "prefix caching is forced off: timed passes repeat the same prompts"),
    "logprobs_mode": ("raw_logprobs", "PPL and the decode checks need raw log-probabilities"),
    "disable_log_stats": (False, "per-request engine statistics feed the diagnostics"),
    "seed": (0, "the evaluator fixes the seed"),
    "max_logprobs": (20, "the evaluator sets the logprob limit"),
    "per_request_spec_decode_metrics": (
        None,
        f"the evaluator sets it ({SPEC_METRICS!r} with speculative decoding; vLLM 0.33 refuses it without)",
    ),
    "tokenizer": (None, "the evaluator owns tokenization: prompts arrive as token ids"),
    "tokenizer_revision": (None, "the evaluator owns tokenization"),
    "tokenizer_mode": (None, "the evaluator owns tokenization"),
    "skip_tokenizer_init": (None, "the evaluator decodes spot-check answers with its own tokenizer"),
}


def evaluator_settings(*, speculative: bool) -> dict[str, Any]:
    """The `LLM` arguments the evaluator adds to every submission's.

    The official tokenizer (prompts arrive as ids; it only decodes spot-check answers), prefix
    caching off, raw logprobs, statistics on (`LLM` turns them off unless told), seed 0, and the
    per-request speculative-decoding counters, which vLLM 0.33 accepts only with a
    `speculative_config` (`VllmConfig.__post_init__` refuses them without one).
    """
    settings = {key: value for key, (value, _) in EVALUATOR_OWNED.items() if value is not None}
    settings["tokenizer"] = TOKENIZER
    if speculative:
        settings["per_request_spec_decode_metrics"] = SPEC_METRICS
    return settings


def start_problems(kwargs: Mapping[str, Any]) -> list[str]:
    """Why vLLM 0.33 would refuse to start with these `LLM` arguments, for the rules the stand-ins mirror.

    The CPU stand-ins apply these so that a run on them fails where vLLM would; vLLM applies them
    itself. Only rules read from vLLM's source are here (see surface.json's `rules`).
    """
    problems = []
    metrics = kwargs.get("per_request_spec_decode_metrics", "none")
    if metrics != "none" and not kwargs.get("speculative_config"):
        problems.append(
            f"per_request_spec_decode_metrics={metrics!r} requires speculative decoding "
            "(vLLM 0.33 refuses it without a speculative_config)"
        )
    return problems


# Method names vLLM 0.33 treats as `mtp` (deprecated aliases, each refused with its reason).
MTP_ALIASES = frozenset(name for name, why in DENIED_VALUES["speculative_method"].items() if why == MTP_ALIAS)
# Methods vLLM 0.33 never re-detects from the draft's name or config.
_FIXED_METHODS = {"ngram", "ngram_gpu", "suffix", "custom_class", "extract_hidden_states"}
_HEAD_METHODS = {"eagle", "eagle3", "dflash", "dspark"}
# Methods that cannot run without a draft model (mtp and dspark fall back to the target's own weights).
METHODS_NEEDING_MODEL = ("draft_model", "eagle", "eagle3", "dflash")
# What the draft's config (architectures, model_type) can turn mtp or draft_model into.
_FROM_DRAFT_CONFIG = ("dflash", "dspark", "mtp")


def speculative_methods(spec: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """The speculative methods vLLM 0.33 may run for a `speculative_config`, and why.

    It follows `SpeculativeConfig.__post_init__`: without a method, a dotted module path as the
    model means `custom_class`, the model `ngram` means `ngram`, anything else `draft_model`;
    MTP aliases become `mtp`; then, for `mtp` and `draft_model` with a draft model, the draft's
    name decides first (`eagle-`, `eagle3`, `dflash`, `dspark`, case-insensitive), then its
    config (its architectures can make it `dflash` or `dspark`, its model type `mtp`), which the
    evaluator does not read: every method the config could lead to is returned.

    Args:
        spec: The speculative config, with the draft model as it will be passed to vLLM.

    Returns:
        The possible methods (one when the config's text decides it) and how they were found.
    """
    method, model = spec.get("method"), spec.get("model")
    if method is None:
        if _is_module_path(model):
            return ("custom_class",), "the model is a dotted module path"
        method = "ngram" if model in ("ngram", "[ngram]") else "draft_model"
    if method in MTP_ALIASES:
        method = "mtp"
    if not isinstance(model, str) or method in _FIXED_METHODS | _HEAD_METHODS:
        return (method,), "as written"
    name = model.lower()
    for fragment, detected in (("eagle-", "eagle"), ("eagle3", "eagle3"), ("dflash", "dflash"), ("dspark", "dspark")):
        if fragment in name:
            return (detected,), f"the draft's name contains {fragment!r}"
    possible = _FROM_DRAFT_CONFIG + (("draft_model",) if method == "draft_model" else ())
    return possible, "it depends on the draft's config (architectures and model type)"


def _is_module_path(model: Any) -> bool:
    """Whether vLLM 0.33 takes `model` for a custom proposer: a dotted import path such as `pkg.MyProposer`."""
    if not isinstance(model, str) or model.startswith(("http://", "https://", "file://")) or "/" in model:
        return False
    parts = model.split(".")
    return len(parts) >= 2 and all(part.isidentifier() for part in parts)
