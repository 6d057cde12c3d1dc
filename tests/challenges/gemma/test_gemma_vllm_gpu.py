"""Opt-in GPU test of the vLLM engine: the real model through the whole evaluation, on a short protocol.

Run on a machine with a CUDA GPU (24 GB or more), vLLM 0.33 and access to the Hub (or a warm cache):

    pip install vllm==0.33.0 && python -m pytest tests/challenges/gemma/test_gemma_vllm_gpu.py --run-gpu -s

It serves google/gemma-4-E4B-it with the bf16 example config, builds a small set from the bundled
sample's authored texts with the official tokenizer (ids are never made by a submission), stores a
bf16 baseline with the same engine, then evaluates the same config against it: every check must
pass, greedy decoding must be self-consistent up to near-ties, and the summary must satisfy its
schemas. It prints the measured figures with the command, for the calibration record
(challenge_gemma/harness/CALIBRATION.md). Numbers from a short protocol never rank.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gemma_helpers import EXAMPLES, SAMPLE, schema_errors

pytestmark = pytest.mark.gpu

SHORT_GPU = {"output_len": 64, "warmup_requests": 2, "plan_after_prompts": 4, "spot_max_new_tokens": 256}


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    pytest.importorskip("vllm", reason="needs vLLM 0.33 with CUDA")
    from gemma_eval.engines.vllm_engine import VllmEngine
    from gemma_eval.params import Params
    from gemma_eval.submission import check_submission, engine_kwargs

    check = check_submission(EXAMPLES / "valid" / "bf16_baseline", min_model_len=Params().min_model_len)
    assert check.submission is not None, check.reasons
    kwargs = engine_kwargs(check.submission, default_max_num_batched_tokens=Params().default_max_num_batched_tokens)
    served = VllmEngine(kwargs, labels=check.submission.labels)
    release = served.close
    served.close = lambda: None  # type: ignore[method-assign]  # shared by the tests; released at the end
    yield served
    release()


def build_set(engine: Any, folder: Path) -> None:
    """The sample's authored texts, templated and tokenized with the official tokenizer, as a public set."""
    import make_sample
    import setlib

    tokenizer = engine._tokenizer
    authored = json.loads((SAMPLE / "authored.json").read_text(encoding="utf-8"))

    def encode(text: str) -> list[int]:
        chat = [{"role": "user", "content": text}]
        rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])

    docs = make_sample.sample_documents(authored)
    instruction = authored["answer_instruction"]
    texts = {p["id"]: make_sample.user_text(p, instruction) for p in authored["prompts"]}
    # The turn ends where the model's generation config says it does (the model is cached by now).
    from transformers import GenerationConfig

    eos = GenerationConfig.from_pretrained(engine.info.tokenizer).eos_token_id
    stops = sorted({*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id} - {None})
    for item in docs["prompts.json"]["items"]:
        item["prompt_token_ids"] = encode(texts[item["id"]])
    warm = {w["id"]: w["text"] for w in authored["warmup"]}
    for item in docs["prompts.json"]["warmup"]:
        item["prompt_token_ids"] = encode(warm[item["id"]])
    continuations = {r["id"]: r["continuation"] for r in authored["references"]}
    for item in docs["references.json"]["items"]:
        item["context_token_ids"] = encode(texts[item["id"]])
        item["target_token_ids"] = list(tokenizer(continuations[item["id"]], add_special_tokens=False)["input_ids"])
    spots = {s["id"]: make_sample.user_text(s, instruction) for s in authored["spot_items"]}
    for item in docs["spot_items.json"]["items"]:
        item["prompt_token_ids"] = encode(spots[item["id"]])
    for name, doc in docs.items():
        doc.update(set="public", tokenizer=engine.info.tokenizer)
        if "stop_token_ids" in doc:
            doc["stop_token_ids"] = stops
        setlib.write(folder / name, doc)


def test_vllm_engine_end_to_end(engine: Any, tmp_path: Path) -> None:
    import generate_baseline
    import setlib
    from gemma_eval.evaluate import RunConfig, evaluate
    from gemma_eval.params import Params

    params = Params().with_overrides(SHORT_GPU, source="gpu test")
    data = tmp_path / "set"
    build_set(engine, data)
    baseline = generate_baseline.build_baseline(engine, data, params)
    setlib.write(data / "baselines" / f"{engine.info.family}.json", baseline)

    config = RunConfig(submission_dir=EXAMPLES / "valid" / "bf16_baseline", data_dir=data, private=False, params=params)
    summary = evaluate(config, lambda submission, p: engine)
    print(
        "\nGPU measurement:",
        json.dumps({k: summary[k] for k in ("tps", "tps_passes", "ppl", "consistency", "agreement", "spot")}),
    )
    print("device:", summary["provenance"]["device"], summary["provenance"]["versions"])
    print("command: python -m pytest tests/challenges/gemma/test_gemma_vllm_gpu.py --run-gpu -s")

    assert schema_errors(summary, "gemma-summary.schema.json") == []
    assert summary["proxy"] is False and summary["protocol_standard"] is False
    assert summary["valid"] is True, summary["reasons"]
    assert summary["all_outputs_full_length"] is True and math.isfinite(summary["tps"]) and summary["tps"] > 0
    assert 1 < summary["ppl"] < 100, "a real model scores authored English text far below a random one"
    assert summary["consistency"]["violation_rate"] <= params.consistency_max_rate
    assert summary["agreement"]["top1"] >= 0.97, "bf16 against its own stored outputs, same engine"
    assert summary["provenance"]["engine_args"]["enable_prefix_caching"] is False
    assert summary["provenance"]["device"]["gpu_name"]


def test_vllm_scores_are_raw_logprobs(engine: Any) -> None:
    ids = [2, *range(1000, 1040)]
    scores = engine.score(ids, 1)
    assert len(scores) == len(ids) - 1
    assert all(s.logprob <= 0 and s.top1_logprob >= s.logprob and s.rank >= 1 for s in scores)
    generated = engine.generate(ids, 32, ignore_eos=True)
    assert len(generated.token_ids) == 32
    rescored = engine.score([*ids, *generated.token_ids], len(ids))
    assert sum(s.rank > 1 and s.margin > 0.1 for s in rescored) == 0, "greedy output is the prefill's top-1"
