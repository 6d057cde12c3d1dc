"""Build the bundled sample sets from their `authored.json`, offline, with the toy tokenizer.

The public sample (`data/sample/`) has the formats of the real sets and is small enough for the CPU
stand-ins: a dozen timed prompts, eight warmups, reference continuations, and a few spot-check
questions, all written for this repository. The private sample (`private_sample/`, `--private`)
is a smaller set of other prompts in the same formats, marked `private`: the stand-in private set
that local mode seeds into the audit bucket for rehearsals of verification (never a real private
set). Their baselines are produced by the stand-in engines themselves (`baselines/fake-v1.json`,
`baselines/tiny-gemma4-v1.json`), so a stand-in run on either exercises every check. Re-run it
after changing the authored texts or a stand-in engine:

    python challenge_gemma/scripts/make_sample.py
    python challenge_gemma/scripts/make_sample.py --private
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import setlib

setlib.use_harness()

from gemma_eval import toy_tokenizer  # noqa: E402
from gemma_eval.engines import open_engine  # noqa: E402
from gemma_eval.params import Params  # noqa: E402
from gemma_eval.submission import check_submission  # noqa: E402
from generate_baseline import BF16_EXAMPLE, build_baseline  # noqa: E402 - the harness path is set up above

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
PRIVATE_SAMPLE = SAMPLE.parents[1] / "private_sample"  # apart from data/: never uploaded with the harness
STAND_INS = ("fake", "transformers")


def user_text(entry: dict[str, Any], instruction: str) -> str:
    """The user turn of an authored entry: a multiple-choice question or free text."""
    if "question" in entry:
        return setlib.multiple_choice_text(entry["question"], entry["choices"], instruction)
    return str(entry["text"])


def chat_ids(text: str) -> list[int]:
    return toy_tokenizer.chat_prompt([{"role": "user", "content": text}])


def sample_documents(authored: dict[str, Any], set_name: str = "sample") -> dict[str, dict[str, Any]]:
    """prompts.json, references.json and spot_items.json of a sample (`set_name`: sample or private), by file name."""
    instruction = authored["answer_instruction"]
    texts = {p["id"]: user_text(p, instruction) for p in authored["prompts"]}
    prompts = [
        {"id": p["id"], "source": p["source"], "prompt_token_ids": chat_ids(texts[p["id"]])}
        | ({"gold": p["gold"]} if "gold" in p else {})
        for p in authored["prompts"]
    ]
    warmup = [
        {"id": w["id"], "source": "authored-warmup", "prompt_token_ids": chat_ids(w["text"])}
        for w in authored["warmup"]
    ]
    references = [
        {
            "id": r["id"],
            "context_token_ids": chat_ids(texts[r["id"]]),
            "target_token_ids": [*toy_tokenizer.encode(r["continuation"]), toy_tokenizer.END_OF_TURN],
        }
        for r in authored["references"]
    ]
    spot = [
        {
            "id": s["id"],
            "task": s["task"],
            "prompt_token_ids": chat_ids(user_text(s, instruction)),
            "gold": s["gold"],
            "num_choices": len(s["choices"]),
        }
        for s in authored["spot_items"]
    ]
    stops = list(toy_tokenizer.STOP_TOKEN_IDS)
    tok = toy_tokenizer.NAME
    return {
        "prompts.json": setlib.document(
            "gemma-prompts",
            set_name,
            tok,
            template="toy chat layout: bos, <turn>user\\n{text}<end>\\n, then an open <turn>model\\n",
            stop_token_ids=stops,
            items=prompts,
            warmup=warmup,
        ),
        "references.json": setlib.document(
            "gemma-references",
            set_name,
            tok,
            reference_model="authored continuations (the sample has no reference model)",
            sampling={},
            items=references,
        ),
        "spot_items.json": setlib.document("gemma-spot-items", set_name, tok, stop_token_ids=stops, items=spot),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a bundled sample set and its stand-in baselines.")
    parser.add_argument("--private", action="store_true", help="the stand-in private set, private_sample/")
    parser.add_argument("--out", type=Path, help="output folder (default: the set's own folder)")
    parser.add_argument("--skip-baselines", action="store_true", help="write only the set, not the baselines")
    args = parser.parse_args(argv)
    source = PRIVATE_SAMPLE if args.private else SAMPLE
    args.out = args.out or source
    authored = json.loads((source / "authored.json").read_text(encoding="utf-8"))
    for name, doc in sample_documents(authored, "private" if args.private else "sample").items():
        print(f"{name}: sha256 {setlib.write(args.out / name, doc)}")
    if args.skip_baselines:
        return 0
    params = Params()
    check = check_submission(BF16_EXAMPLE, min_model_len=params.min_model_len)
    if check.submission is None:
        raise SystemExit("the bf16 example is refused: " + "; ".join(check.reasons))
    for kind in STAND_INS:
        engine = open_engine(kind, check.submission, params)
        try:
            doc = build_baseline(engine, args.out, params)
        finally:
            engine.close()
        path = args.out / "baselines" / f"{engine.info.family}.json"
        print(f"{path.name}: ppl {doc['ppl']:.3f}, sha256 {setlib.write(path, doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
