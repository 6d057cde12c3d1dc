"""The submission config: the allowlist, the denylist with its reasons, and malformed or hostile input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from gemma_eval.submission import MAX_CONFIG_BYTES, check_submission, engine_kwargs, sanitize
from gemma_helpers import EXAMPLES, schema_errors

BASE: dict[str, Any] = {"format": "gemma-submission", "version": 1, "model": "google/gemma-4-E4B-it"}


def write(folder: Path, doc: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str | bytes) else json.dumps(doc)
    target = folder / "submission.json"
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    return folder


def reasons_for(tmp_path: Path, doc: Any) -> list[str]:
    check = check_submission(write(tmp_path / "sub", doc), min_model_len=4096)
    assert (check.submission is None) == bool(check.reasons)
    return check.reasons


@pytest.mark.parametrize("example", sorted((EXAMPLES / "valid").iterdir()), ids=lambda p: p.name)
def test_valid_examples_pass_the_harness_and_the_schema(example: Path) -> None:
    check = check_submission(example, min_model_len=4096)
    assert check.reasons == [] and check.submission is not None
    assert schema_errors(json.loads((example / "submission.json").read_text()), "gemma-submission.schema.json") == []


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("relaxed_acceptance", ["rejection_sample_method", "synthetic_acceptance_rates", "prefix caching", "raw log"]),
        ("model_outside_submission", ["'..'"]),
        (
            "unlisted_engine_arg",
            ["hf_overrides", "logits processors", "swap_space: unknown: vLLM 0.33 has no such setting"],
        ),
    ],
)
def test_invalid_examples_are_refused_with_their_reasons(example: str, expected: list[str]) -> None:
    check = check_submission(EXAMPLES / "invalid" / example, min_model_len=4096)
    assert check.submission is None
    text = "\n".join(check.reasons)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


@pytest.mark.parametrize(
    ("engine_args", "fragment"),
    [
        ({"logprobs_mode": "processed_logprobs"}, "raw log-probabilities"),
        ({"logprobs_mode": "raw_logits"}, "raw log-probabilities"),
        ({"enable_prefix_caching": True}, "prefix caching is forced off"),
        ({"per_request_spec_decode_metrics": "summary"}, "vLLM 0.33 refuses it without"),
        ({"logits_processors": ["pkg.Processor"]}, "custom logits processors"),
        ({"trust_remote_code": True}, "run code from a model repository"),
        ({"hf_overrides": {"num_hidden_layers": 30}}, "rewrites the model's architecture"),
        ({"model_class_overrides": {"Gemma4ForCausalLM": "pkg.Fast"}}, "code to import and run"),
        ({"kv_sharing_fast_prefill": True}, "incorrect logits for prompt tokens"),
        ({"override_generation_config": {"temperature": 0.5}}, "sampling is fixed by the evaluator"),
        ({"quantization_config": {"linear": {}}}, "open-ended per-layer quantization"),
        ({"language_model_only": True}, "whole multimodal model"),
        ({"enable_lora": True}, "LoRA adapters change the model"),
        ({"data_parallel_size": 2}, "one GPU in one process"),
        # synthetic_* and fly_* are speculative settings; as engine arguments vLLM 0.33 has none of them.
        ({"synthetic_acceptance_length": 3}, "vLLM 0.33 has no such setting"),
        ({"fly_window_size": 3}, "vLLM 0.33 has no such setting"),
        ({"swap_space": 4}, "vLLM 0.33 has no such setting"),
        ({"tokenizer": "someone/else"}, "the evaluator owns tokenization"),
        ({"skip_tokenizer_init": True}, "its own tokenizer"),
        ({"chat_template": "{{ messages }}"}, "prompts arrive as token ids"),
        ({"disable_log_stats": True}, "per-request engine statistics"),
        ({"seed": False}, "the evaluator fixes the seed"),
        ({"spec_model": "x/y"}, "under the top-level speculative_config"),
        ({"speculative_config": {"model": "x/y"}}, "top-level speculative_config"),
        ({"load_format": "dummy"}, "'dummy' is refused: random weights"),
        ({"load_format": "gguf"}, "must be one of"),
        ({"load_format": "bitsandbytes"}, "must be one of"),
        ({"quantization": "bitsandbytes"}, "must be one of"),
        ({"quantization": "fbgemm_fp8"}, "deprecated in vLLM 0.33"),
        ({"kv_cache_dtype": "turboquant_4bit_nc"}, "not yet reviewed"),
        ({"attention_backend": "CUSTOM"}, "code to import and run"),
        ({"tensor_parallel_size": 2}, "must be one of [1]"),
        ({"limit_mm_per_prompt": {"image": 0, "audio": 1}}, "zero limits are not allowed"),
        ({"limit_mm_per_prompt": {"image": {"count": 0}}}, "zero limits are not allowed"),
        ({"max_model_len": 2048}, "below 4096"),
        ({"gpu_memory_utilization": 1.5}, "from 0.05 to 0.98"),
        ({"max_num_seqs": True}, "must be an integer"),
        ({"compilation_config": {"backend": "pkg.compile"}}, "compilation_config.backend: denied: it names a compiler"),
        ({"compilation_config": {"inductor_passes": {"p": "pkg.p"}}}, "code to import and run"),
        ({"compilation_config": {"inductor_compile_config": {}}}, "open-ended config"),
        ({"compilation_config": {"levels": 3}}, "compilation_config.levels: unknown"),
        ({"compilation_config": {"mode": 5}}, "must be one of [0, 1, 2, 3]"),
        ({"compilation_config": {"custom_ops": ["all", "evil op"]}}, "'+op' or '-op'"),
        ({"compilation_config": 7}, "must be an object"),
        ({"compilation_config": True}, "must be an object"),
        ({"attention_config": {"use_non_causal": True}}, "bidirectional attention"),
        ({"attention_config": {"backend": "NO_ATTENTION"}}, "it skips attention"),
        ({"attention_config": {"backend_per_kind": {"mamba": "FLASH_ATTN"}}}, "other model families"),
        ({"attention_config": {"flex_attn_block_m": 24}}, "power of two"),
        ({"attention_config": "FLASH_ATTN"}, "must be an object"),
    ],
)
def test_engine_args_denied_with_a_reason(tmp_path: Path, engine_args: dict[str, Any], fragment: str) -> None:
    reasons = reasons_for(tmp_path, BASE | {"engine_args": engine_args})
    assert any(fragment in r for r in reasons), reasons


def test_allowed_engine_args_pass(tmp_path: Path) -> None:
    args = {
        "quantization": "compressed-tensors",
        "kv_cache_dtype": "fp8",
        "compilation_config": {"mode": 3, "cudagraph_mode": "FULL_DECODE_ONLY", "cudagraph_capture_sizes": [1, 2]},
        "attention_config": {"backend": "TRITON_ATTN", "backend_per_kind": {"sliding_window": "FLASH_ATTN"}},
        "optimization_level": 3,
        "performance_mode": "interactivity",
        "linear_backend": "marlin",
        "load_format": "safetensors",
        "async_scheduling": True,
    }
    assert reasons_for(tmp_path, BASE | {"engine_args": args}) == []
    assert reasons_for(tmp_path, BASE | {"engine_args": {"compilation_config": 0}}) == [], "an integer mode"


def test_evaluator_owned_settings_may_repeat_the_evaluator_value(tmp_path: Path) -> None:
    owned = {"enable_prefix_caching": False, "logprobs_mode": "raw_logprobs", "disable_log_stats": False, "seed": 0}
    assert reasons_for(tmp_path, BASE | {"engine_args": owned}) == []


@pytest.mark.parametrize(
    ("speculative", "fragment"),
    [
        (
            {"model": "google/gemma-4-E4B-it-assistant", "rejection_sample_method": "synthetic"},
            "accepts drafts at preset rates",
        ),
        ({"model": "google/gemma-4-E4B-it-assistant", "rejection_sample_method": "fly"}, "lossy by vLLM's own"),
        ({"model": "google/gemma-4-E4B-it-assistant", "rejection_sample_method": "block"}, "relaxes per-token"),
        ({"model": "google/gemma-4-E4B-it-assistant", "rejection_sample_method": "fast"}, "must be one of"),
        ({"model": "google/gemma-4-E4B-it-assistant", "synthetic_acceptance_rates": [0.9]}, "fakes draft acceptance"),
        ({"model": "google/gemma-4-E4B-it-assistant", "fly_window_size": 3}, "relaxes draft verification"),
        ({"model": "google/gemma-4-E4B-it-assistant", "fly_margin": 0.5}, "vLLM 0.33 has no such setting"),
        ({"model": "google/gemma-4-E4B-it-assistant", "trust_remote_code": True}, "vLLM 0.33 has no such setting"),
        (
            {"model": "google/gemma-4-E4B-it-assistant", "enable_adaptive_verification": True},
            "not shown to be lossless",
        ),
        ({"model": "google/gemma-4-E4B-it-assistant", "draft_lm_head_quantization": "fp8"}, "Gemma 4's MTP drafter"),
        ({"model": "google/gemma-4-E4B-it-assistant", "use_heterogeneous_vocab": True}, "owns tokenization"),
        ({"model": "google/gemma-4-E4B-it-assistant", "draft_sample_method": "random"}, "must be one of"),
        ({"model": "google/gemma-4-E4B-it-assistant", "draft_sample_method": "probabilistic"}, "not shown"),
        ({"model": "google/gemma-4-E4B-it-assistant", "num_speculative_tokens": 0}, "from 1 to 16"),
        ({"model": "google/gemma-4-E4B-it-assistant", "method": "medusa"}, "must be one of"),
        ({"model": "google/gemma-4-E4B-it-assistant", "method": "mlp_speculator"}, "must be one of"),
        ({"model": "google/gemma-4-E4B-it-assistant", "method": "gemma4_mtp"}, "write 'mtp'"),
        ({"model": "google/gemma-4-E4B-it-assistant", "method": "custom_class"}, "code to import and run"),
        ({"method": "suffix", "num_speculative_tokens": 8}, "arctic-inference"),
        ({"method": "eagle3", "num_speculative_tokens": 3}, "method 'eagle3' needs a draft model"),
        ({"num_speculative_tokens": 4}, "needs a draft model or a method"),
        ({"model": "../drafter"}, "neither a Hub repository id"),
        ({"model": "pkg.MyProposer"}, "neither a Hub repository id"),
        ("mtp", "must be an object"),
    ],
)
def test_speculative_config_denied_with_a_reason(tmp_path: Path, speculative: Any, fragment: str) -> None:
    reasons = reasons_for(tmp_path, BASE | {"speculative_config": speculative})
    assert any(fragment in r for r in reasons), reasons


def test_standard_speculative_decoding_is_allowed(tmp_path: Path) -> None:
    spec = {
        "model": "google/gemma-4-E4B-it-assistant",
        "num_speculative_tokens": 7,
        "rejection_sample_method": "standard",
    }
    assert reasons_for(tmp_path, BASE | {"speculative_config": spec}) == []
    assert reasons_for(tmp_path, BASE | {"speculative_config": {"method": "ngram", "prompt_lookup_max": 4}}) == []
    eagle3 = {"model": "org/gemma-4-eagle3-head", "method": "mtp", "num_speculative_tokens": 3}
    assert reasons_for(tmp_path, BASE | {"speculative_config": eagle3}) == [], "vLLM runs it as eagle3: allowed"


@pytest.mark.parametrize(
    "model",
    [
        "../weights",
        "./../weights",
        "./weights/../../etc",
        "/etc/passwd",
        "./",
        ".//weights",
        "./weights\\..\\..",
        "~/weights",
        "https://example.com/model",
        "hf://google/gemma",
        "google/../gemma",
        "google/gemma/extra",
        "google/gemma\x00",
        "",
        42,
        None,
    ],
)
def test_model_paths_cannot_leave_the_submission(tmp_path: Path, model: Any) -> None:
    (tmp_path / "sub" / "weights").mkdir(parents=True)
    reasons = reasons_for(tmp_path, BASE | {"model": model})
    assert reasons and all("model" in r for r in reasons), reasons


def test_a_symlink_out_of_the_submission_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = write(tmp_path / "sub", BASE | {"model": "./weights"})
    os.symlink(outside, folder / "weights")
    check = check_submission(folder, min_model_len=4096)
    assert check.submission is None and "resolves outside the submission folder" in check.reasons[0]


def test_a_local_model_folder_resolves_and_is_published_as_a_label(tmp_path: Path) -> None:
    folder = write(tmp_path / "sub", BASE | {"model": "./weights", "speculative_config": {"model": "./drafter"}})
    (folder / "weights").mkdir()
    (folder / "drafter").mkdir()
    (folder / "weights" / "config.json").write_text("{}")
    check = check_submission(folder, min_model_len=4096)
    assert check.submission is not None, check.reasons
    assert Path(check.submission.model) == (folder / "weights").resolve()
    kwargs = engine_kwargs(check.submission, default_max_num_batched_tokens=512)
    shown = sanitize(kwargs, check.submission.labels)
    assert shown["model"] == "submission:./weights"
    assert shown["speculative_config"]["model"] == "submission:./drafter"
    assert str(tmp_path) not in json.dumps(shown), "no path of the machine that ran it is published"
    assert check.submission.files == 2


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xff\xfe{}", "not valid JSON"),
        ("{", "not valid JSON"),
        ('{"format": "gemma-submission", "version": 1, "model": "a/b",}', "not valid JSON"),
        ('{"model": NaN}', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        (
            json.dumps(BASE | {"engine_args": {"compilation_config": {"a": {"b": {"c": {"d": {"e": {}}}}}}}}),
            "levels deep",
        ),
        (json.dumps(BASE | {"plugins": ["evil.py"]}), "plugins: unknown key"),
        (json.dumps(BASE | {"engine_args": []}), "engine_args: must be an object"),
        (json.dumps(BASE | {"description": "x" * 2001}), "at most 2000"),
        (json.dumps(BASE | {"revision": "main; rm -rf /"}), "revision"),
        (json.dumps({"model": "google/gemma-4-E4B-it"}), "format must be"),
    ],
)
def test_malformed_configs_are_refused_without_raising(tmp_path: Path, raw: str | bytes, fragment: str) -> None:
    reasons = reasons_for(tmp_path, raw)
    assert any(fragment in r for r in reasons), reasons


def test_oversized_config_is_refused_before_parsing(tmp_path: Path) -> None:
    text = json.dumps(BASE | {"description": "x"}) + " " * MAX_CONFIG_BYTES
    assert reasons_for(tmp_path, text) == [f"submission.json: {len(text)} bytes, more than {MAX_CONFIG_BYTES}"]


def test_missing_config_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "missing" in check_submission(tmp_path / "empty", min_model_len=4096).reasons[0]
    missing = check_submission(tmp_path / "nowhere", min_model_len=4096)
    assert missing.submission is None and missing.sha256 is None and "does not exist" in missing.reasons[0]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = BASE | {
        "model": "../x",
        "engine_args": {"logprobs_mode": "raw_logits", "enable_prefix_caching": True, "swap_space": 4},
        "speculative_config": {"model": "a/b", "rejection_sample_method": "synthetic"},
    }
    assert len(reasons_for(tmp_path, doc)) == 5


def test_digest_covers_every_file(tmp_path: Path) -> None:
    folder = write(tmp_path / "sub", BASE)
    first = check_submission(folder, min_model_len=4096).sha256
    (folder / "notes.txt").write_text("a")
    second = check_submission(folder, min_model_len=4096).sha256
    (folder / "notes.txt").write_text("b")
    third = check_submission(folder, min_model_len=4096).sha256
    assert len({first, second, third}) == 3


def test_engine_kwargs_force_the_evaluator_settings(tmp_path: Path) -> None:
    check = check_submission(
        write(tmp_path / "sub", BASE | {"engine_args": {"max_num_batched_tokens": 1024}}), min_model_len=4096
    )
    assert check.submission is not None
    kwargs = engine_kwargs(check.submission, default_max_num_batched_tokens=512)
    assert kwargs["enable_prefix_caching"] is False
    assert kwargs["logprobs_mode"] == "raw_logprobs"
    assert kwargs["disable_log_stats"] is False
    assert kwargs["max_num_batched_tokens"] == 1024, "a submission's own chunk size is kept"
    assert kwargs["tokenizer"] == "google/gemma-4-E4B-it", "the official tokenizer, in the one assembly"
    assert "per_request_spec_decode_metrics" not in kwargs, "vLLM 0.33 refuses it without speculative decoding"
    default = check_submission(write(tmp_path / "sub2", BASE), min_model_len=4096).submission
    assert default is not None
    assert engine_kwargs(default, default_max_num_batched_tokens=512)["max_num_batched_tokens"] == 512
    spec = BASE | {"speculative_config": {"model": "google/gemma-4-E4B-it-assistant", "num_speculative_tokens": 7}}
    drafted = check_submission(write(tmp_path / "sub3", spec), min_model_len=4096).submission
    assert drafted is not None
    assert engine_kwargs(drafted, default_max_num_batched_tokens=512)["per_request_spec_decode_metrics"] == "summary"


def _denied_cases() -> list[tuple[str, dict[str, Any], str]]:
    from gemma_eval import vllm_denied

    draft = {"model": "google/gemma-4-E4B-it-assistant", "num_speculative_tokens": 3}
    cases = [(f"engine_args.{k}", {"engine_args": {k: True}}, why) for k, why in vllm_denied.DENIED.items()]
    cases += [
        (f"speculative_config.{k}", {"speculative_config": draft | {k: True}}, why)
        for k, why in vllm_denied.SPECULATIVE_DENIED.items()
    ]
    for where, table in (
        ("compilation_config", vllm_denied.COMPILATION_DENIED),
        ("attention_config", vllm_denied.ATTENTION_DENIED),
    ):
        cases += [(f"engine_args.{where}.{k}", {"engine_args": {where: {k: True}}}, why) for k, why in table.items()]
    return cases


@pytest.mark.parametrize(("where", "doc", "why"), _denied_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_denied_setting_is_refused_with_its_reason(
    tmp_path: Path, where: str, doc: dict[str, Any], why: str
) -> None:
    reasons = reasons_for(tmp_path, BASE | doc)
    assert f"{where}: denied: {why}" in reasons, reasons


def _value_cases() -> list[tuple[str, str, object, bool]]:
    from gemma_eval.vllm_args import ALLOWED_VALUES
    from gemma_eval.vllm_denied import DENIED_VALUES

    engine_level = {
        "dtype": "dtype",
        "quantization": "quantization",
        "kv_cache_dtype": "kv_cache_dtype",
        "load_format": "load_format",
        "model_impl": "model_impl",
        "attention_backend": "attention_backend",
        "linear_backend": "linear_backend",
        "optimization_level": "optimization_level",
        "performance_mode": "performance_mode",
    }
    cases = []
    for key, values in engine_level.items():
        cases += [(key, values, v, True) for v in ALLOWED_VALUES[values]]
        cases += [(key, values, v, False) for v in DENIED_VALUES.get(values, {})]
    return cases


@pytest.mark.parametrize(("key", "values", "value", "allowed"), _value_cases())
def test_every_value_is_allowed_or_refused_with_its_reason(
    tmp_path: Path, key: str, values: str, value: object, allowed: bool
) -> None:
    from gemma_eval.vllm_denied import DENIED_VALUES

    reasons = reasons_for(tmp_path, BASE | {"engine_args": {key: value}})
    expected = [] if allowed else [f"engine_args.{key}: {value!r} is refused: {DENIED_VALUES[values][str(value)]}"]
    assert reasons == expected


COMMIT = "0123456789abcdef0123456789abcdef01234567"
DRAFT = {"model": "google/gemma-4-E4B-it-assistant", "num_speculative_tokens": 3}


@pytest.mark.parametrize(
    ("changes", "unpinned"),
    [
        ({}, ["revision: model google/gemma-4-E4B-it is not pinned (no revision)"]),
        ({"revision": "main"}, ["revision 'main' is a branch or tag, not a commit"]),
        ({"revision": COMMIT.upper()}, ["is a branch or tag, not a commit"]),  # a commit id is lowercase hex
        ({"revision": COMMIT}, []),
        (
            {"revision": COMMIT, "speculative_config": DRAFT},
            ["speculative_config.revision: speculative_config.model google/gemma-4-E4B-it-assistant is not pinned"],
        ),
        (
            {"revision": COMMIT, "speculative_config": {**DRAFT, "revision": COMMIT}},
            [],
        ),
    ],
)
def test_a_hub_model_not_pinned_to_a_commit_gets_a_note_not_a_refusal(
    tmp_path: Path, changes: dict[str, Any], unpinned: list[str]
) -> None:
    check = check_submission(write(tmp_path / "sub", {**BASE, **changes}), min_model_len=4096)
    assert check.reasons == [] and check.submission is not None
    assert len(check.notes) == len(unpinned)
    for note, fragment in zip(check.notes, unpinned, strict=True):
        assert fragment in note and "40-hex commit" in note and "model_info(" in note


def test_a_local_model_folder_needs_no_revision(tmp_path: Path) -> None:
    folder = write(tmp_path / "sub", {**BASE, "model": "./weights"})
    (folder / "weights").mkdir()
    check = check_submission(folder, min_model_len=4096)
    assert check.reasons == [] and check.notes == []  # the submission's digest pins its own files


def test_a_refused_submission_gets_no_pinning_note(tmp_path: Path) -> None:
    refused = write(tmp_path / "sub", {**BASE, "engine_args": {"trust_remote_code": True}})
    check = check_submission(refused, min_model_len=4096)
    assert check.submission is None and check.notes == []
