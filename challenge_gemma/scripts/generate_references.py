"""Generate the reference continuations that perplexity is scored on, as a GPU job.

Each prompt of a set's prompts.json (plus, optionally, extra user turns such as code, other
languages and math notation, so that a vocabulary pruned to the public references shows) is
continued by the reference model with Gemma's recommended sampling (temperature 1, top-k 64,
top-p 0.95), one fixed seed per record, at most 512 tokens, stopping at the end of the turn. The
context is the prompt's ids, the target the continuation's. The settings are recorded in the file.

It needs vLLM and a GPU large enough for the reference model (`google/gemma-4-31B-it` in bf16 needs
about 64 GB: one 80 GB GPU). On Hugging Face Jobs, from the repository root:

    hf jobs run --flavor a100-large --timeout 2h -v ./challenge_gemma:/code
        -v hf://buckets/ADMIN_ORG/SLUG-audit-bucket/eval_dataset:/set:rw
        vllm/vllm-openai:v0.33.0 python3 /code/scripts/generate_references.py --data-dir /set

(one command; its lines are split here for reading). Run it once for the public folder too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import setlib

SAMPLING = {"temperature": 1.0, "top_k": 64, "top_p": 0.95, "max_tokens": 512}


def extra_prompts(lines: Sequence[str]) -> list[dict[str, str]]:
    """Extra user turns from JSONL lines `{"id", "text"}`.

    Raises:
        ValueError: A line is not such an object.
    """
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("id"), str)
            or not isinstance(entry.get("text"), str)
        ):
            raise ValueError(f"line {number}: expected an object with 'id' and 'text' strings")
        out.append({"id": entry["id"], "text": entry["text"]})
    return out


def cut_at_stop(token_ids: Sequence[int], stops: Sequence[int]) -> list[int]:
    """The continuation up to and including its first stop token (the end of the turn is part of it)."""
    out = []
    for token in token_ids:
        out.append(int(token))
        if token in stops:
            break
    return out


def references_document(
    set_name: str,
    tokenizer: str,
    model: str,
    contexts: Mapping[str, Sequence[int]],
    targets: Mapping[str, Sequence[int]],
    sampling: Mapping[str, Any],
) -> dict[str, Any]:
    """references.json; records whose continuation came out empty are left out (nothing to score)."""
    items = [
        {"id": rid, "context_token_ids": list(contexts[rid]), "target_token_ids": list(targets[rid])}
        for rid in contexts
        if targets.get(rid)
    ]
    return setlib.document(
        "gemma-references", set_name, tokenizer, reference_model=model, sampling=dict(sampling), items=items
    )


def main(argv: list[str] | None = None) -> int:  # needs vLLM and a GPU
    parser = argparse.ArgumentParser(
        description="Generate reference continuations for a set's prompts.json with the reference model (GPU).",
        epilog="Writes <data-dir>/references.json; see the module docstring for the job command.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="the set's folder, holding prompts.json")
    parser.add_argument("--model", default="google/gemma-4-31B-it", help="the reference model")
    parser.add_argument("--revision", help="pin the reference model to a commit")
    parser.add_argument(
        "--extra-prompts", type=Path, help='JSONL of extra user turns {"id", "text"} (rare-token content)'
    )
    parser.add_argument("--seed", type=int, default=0, help="record i is sampled with seed + i")
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    args = parser.parse_args(argv)

    from vllm import LLM, SamplingParams, TokensPrompt

    prompts = json.loads((args.data_dir / "prompts.json").read_text(encoding="utf-8"))
    setlib.refuse_repository_path(args.data_dir, prompts["set"])
    llm = LLM(
        model=args.model,
        revision=args.revision,
        tokenizer=prompts["tokenizer"],
        max_model_len=args.max_model_len,
        tensor_parallel_size=args.tensor_parallel_size,
        enable_prefix_caching=False,
    )
    contexts = {p["id"]: p["prompt_token_ids"] for p in prompts["items"]}
    if args.extra_prompts:
        tokenizer = llm.get_tokenizer()
        for extra in extra_prompts(args.extra_prompts.read_text(encoding="utf-8").splitlines()):
            chat = [{"role": "user", "content": extra["text"]}]
            rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            contexts[extra["id"]] = list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    stops = list(prompts.get("stop_token_ids", []))
    ids = list(contexts)
    params = [
        SamplingParams(**SAMPLING, seed=args.seed + i, stop_token_ids=stops, detokenize=False) for i in range(len(ids))
    ]
    outputs = llm.generate([TokensPrompt(prompt_token_ids=contexts[i]) for i in ids], params)
    targets = {rid: cut_at_stop(out.outputs[0].token_ids, stops) for rid, out in zip(ids, outputs, strict=True)}
    import vllm

    sampling = {**SAMPLING, "seed": f"{args.seed} + record index", "vllm": vllm.__version__, "revision": args.revision}
    doc = references_document(prompts["set"], prompts["tokenizer"], args.model, contexts, targets, sampling)
    digest = setlib.write(args.data_dir / "references.json", doc)
    tokens = sum(len(t["target_token_ids"]) for t in doc["items"])
    print(f"references.json: {len(doc['items'])} records, {tokens} target tokens, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
