"""Store the bf16 baseline of one model family on one evaluation set.

The baseline is what the evaluator compares a submission with: the greedy outputs of every timed
prompt (for top-1 agreement), the per-record NLL of the reference continuations (for the PPL cap
and the per-record guard) and the correctness of every spot-check item. It is produced by the
harness's own engines and protocol code, so it is measured exactly as submissions are.

For the real family run it as a GPU job on the challenge's GPU kind (A10G) and vLLM version, with
the plain bf16 config. On Hugging Face Jobs, from the repository root, with the set in the audit
bucket (the image is the collab's `jobs.image`):

    hf jobs run --flavor a10g-large --timeout 3h -v ./challenge_gemma:/code
        -v hf://buckets/ADMIN_ORG/SLUG-audit-bucket/eval_dataset:/set:rw
        vllm/vllm-openai:v0.33.0 python3 /code/scripts/generate_baseline.py --data-dir /set

(one command; its lines are split here for reading). A private set takes 1 to 2 hours at bf16 speed.

For the CPU stand-ins (the bundled sample) `make_sample.py` calls it.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import setlib

setlib.use_harness()

from gemma_eval.budget import Deadline  # noqa: E402 - the harness path is set up above
from gemma_eval.data import load_eval_data  # noqa: E402
from gemma_eval.engines import KINDS, open_engine  # noqa: E402
from gemma_eval.engines.base import Engine  # noqa: E402
from gemma_eval.params import Params  # noqa: E402
from gemma_eval.ppl import score_references  # noqa: E402
from gemma_eval.spot import grade_items  # noqa: E402
from gemma_eval.submission import check_submission  # noqa: E402
from gemma_eval.summary import engine_provenance  # noqa: E402

BF16_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "valid" / "bf16_baseline"


def build_baseline(engine: Engine, folder: Path, params: Params) -> dict[str, Any]:
    """Measure the baseline document of `engine`'s family on the set in `folder`.

    Raises:
        SystemExit: An output has the wrong length or a score fails its sanity checks.
    """
    data = load_eval_data(folder)
    deadline = Deadline(engine.clock, math.inf)
    outputs = []
    for prompt in data.prompts.items:
        tokens = engine.generate(prompt.token_ids, params.output_len, ignore_eos=True).token_ids
        if len(tokens) != params.output_len:
            raise SystemExit(f"prompt {prompt.id}: {len(tokens)} tokens, not {params.output_len}")
        outputs.append({"id": prompt.id, "token_ids": list(tokens)})
    perplexity = score_references(engine, data.references.items, deadline)
    if perplexity.problems or perplexity.ppl is None:
        raise SystemExit("reference scores failed their sanity checks: " + "; ".join(perplexity.problems[:3]))
    spot = []
    if data.spot:
        graded = grade_items(engine, data.spot.items, data.spot.stop_token_ids, params, deadline)
        spot = [
            {"id": s.id, "answer": graded[s.id].answer, "correct": graded[s.id].answer == s.gold}
            for s in data.spot.items
        ]
    provenance = engine_provenance(engine.info)
    return setlib.document(
        "gemma-baseline",
        data.prompts.set,
        data.prompts.tokenizer,
        family=engine.info.family,
        engine={key: provenance[key] for key in ("engine", "engine_description", "versions", "device", "engine_args")},
        output_len=params.output_len,
        ppl=perplexity.ppl,
        ppl_records=[
            {"id": rid, "nll_sum": record.nll_sum, "num_tokens": record.num_tokens}
            for rid, record in perplexity.records.items()
        ],
        outputs=outputs,
        spot=spot,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Writes <data-dir>/baselines/<family>.json."
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="the evaluation set's folder")
    parser.add_argument(
        "--engine", choices=KINDS, default="vllm", help="vllm for the real family; CPU stand-ins for the sample"
    )
    parser.add_argument(
        "--submission",
        type=Path,
        default=BF16_EXAMPLE,
        help="the baseline's submission folder (default: the bf16 example)",
    )
    parser.add_argument("--out", type=Path, help="output file (default: <data-dir>/baselines/<family>.json)")
    args = parser.parse_args(argv)
    params = Params()
    check = check_submission(args.submission, min_model_len=params.min_model_len)
    if check.submission is None:
        raise SystemExit("the baseline submission is refused: " + "; ".join(check.reasons))
    engine = open_engine(args.engine, check.submission, params)
    try:
        doc = build_baseline(engine, args.data_dir, params)
    finally:
        engine.close()
    out = args.out or args.data_dir / "baselines" / f"{engine.info.family}.json"
    setlib.refuse_repository_path(out.parent, doc["set"])
    digest = setlib.write(out, doc)
    print(f"{out.name}: ppl {doc['ppl']:.4f}, {len(doc['outputs'])} outputs, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
