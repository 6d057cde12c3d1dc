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
        ("unlisted_engine_arg", ["hf_overrides", "logits processors", "swap_space: not on the allowlist"]),
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
        ({"logits_processors": ["pkg.Processor"]}, "custom logits processors"),
        ({"trust_remote_code": True}, "run code from a model repository"),
        ({"hf_overrides": {"num_hidden_layers": 30}}, "rewrites the model's architecture"),
        ({"synthetic_acceptance_length": 3}, "synthetic acceptance"),
        ({"fly_threshold": 0.3}, "'fly' acceptance"),
        ({"tokenizer": "someone/else"}, "the evaluator owns tokenization"),
        ({"skip_tokenizer_init": True}, "its own tokenizer"),
        ({"disable_log_stats": True}, "per-request engine statistics"),
        ({"seed": False}, "the evaluator fixes the seed"),
        ({"spec_model": "x/y"}, "under speculative_config"),
        ({"speculative_config": {"model": "x/y"}}, "top-level speculative_config"),
        ({"load_format": "dummy"}, "must be one of"),
        ({"tensor_parallel_size": 2}, "must be one of [1]"),
        ({"limit_mm_per_prompt": {"image": 0, "audio": 1}}, "zero limits are not allowed"),
        ({"limit_mm_per_prompt": {"image": {"count": 0}}}, "zero limits are not allowed"),
        ({"max_model_len": 2048}, "below 4096"),
        ({"gpu_memory_utilization": 1.5}, "from 0.05 to 0.98"),
        ({"max_num_seqs": True}, "must be an integer"),
        ({"enable_lora": True}, "not on the allowlist"),
    ],
)
def test_engine_args_denied_with_a_reason(tmp_path: Path, engine_args: dict[str, Any], fragment: str) -> None:
    reasons = reasons_for(tmp_path, BASE | {"engine_args": engine_args})
    assert any(fragment in r for r in reasons), reasons


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
        ({"model": "google/gemma-4-E4B-it-assistant", "rejection_sample_method": "fly"}, "relax acceptance"),
        ({"model": "google/gemma-4-E4B-it-assistant", "rejection_sample_method": "block"}, "relax acceptance"),
        ({"model": "google/gemma-4-E4B-it-assistant", "synthetic_acceptance_rates": [0.9]}, "fake draft acceptance"),
        ({"model": "google/gemma-4-E4B-it-assistant", "fly_margin": 0.5}, "relax draft verification"),
        (
            {"model": "google/gemma-4-E4B-it-assistant", "enable_adaptive_verification": True},
            "not shown to be lossless",
        ),
        ({"model": "google/gemma-4-E4B-it-assistant", "draft_sample_method": "random"}, "must be one of"),
        ({"model": "google/gemma-4-E4B-it-assistant", "num_speculative_tokens": 0}, "from 1 to 16"),
        ({"num_speculative_tokens": 4}, "needs a draft model or a method"),
        ({"model": "../drafter"}, "neither a Hub repository id"),
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
    assert "tokenizer" not in kwargs, "the vLLM engine adds the official tokenizer itself"
    default = check_submission(write(tmp_path / "sub2", BASE), min_model_len=4096).submission
    assert default is not None
    assert engine_kwargs(default, default_max_num_batched_tokens=512)["max_num_batched_tokens"] == 512
