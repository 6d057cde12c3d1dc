"""Job entrypoint of the Gemma challenge: evaluate one submission and write summary.json.

    python3 run.py --submission-dir /submission --state-dir /state [--private-dir /private]

Exit status: 0 when summary.json was written (valid or invalid: read its `valid` and `reasons`);
3 on an infrastructure failure (no summary, so the verifier leaves the result pending); 2 on a
usage error; 1 on an unexpected evaluator error. Runs with the standard library alone plus the
chosen engine's own libraries; `--engine fake` needs nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gemma_eval import EVALUATOR_NAME, EVALUATOR_VERSION  # noqa: E402 - after the path line above
from gemma_eval.engines import KINDS, open_engine  # noqa: E402
from gemma_eval.errors import InfrastructureError  # noqa: E402
from gemma_eval.evaluate import RunConfig, evaluate  # noqa: E402
from gemma_eval.params import Params, load_overrides  # noqa: E402
from gemma_eval.summary import write_summary  # noqa: E402

EXIT_INFRASTRUCTURE = 3
# The public set lives in data/ beside this file once uploaded. The CPU stand-ins read the bundled
# sample instead (their toy tokenizer cannot read real sets): data/sample/ once uploaded, the
# repository's data/sample/ when run from a checkout.
PUBLIC_DATA = HERE / "data"
SAMPLE_DATA = (HERE / "data" / "sample", HERE.parent / "data" / "sample")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description=f"{EVALUATOR_NAME} {EVALUATOR_VERSION}: tokens/s, perplexity and decode checks of one "
        "Gemma challenge submission. Writes STATE_DIR/summary.json.",
    )
    parser.add_argument("--submission-dir", type=Path, required=True, help="folder holding submission.json")
    parser.add_argument("--state-dir", type=Path, required=True, help="folder that receives summary.json")
    parser.add_argument(
        "--private-dir", type=Path, help="the organizers' private set (verification runs); replaces the public set"
    )
    parser.add_argument(
        "--engine",
        choices=KINDS,
        default="vllm",
        help="vllm (the real engine, default); transformers or fake: CPU stand-ins whose numbers never rank",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the evaluation set's folder (default: data/ beside run.py for vllm; the bundled sample, "
        "data/sample/, for the CPU stand-ins)",
    )
    parser.add_argument("--ppl-cap", type=float, help="absolute perplexity cap from the collab spec")
    parser.add_argument("--time-budget-s", type=float, help="seconds the run may take (default from the parameters)")
    parser.add_argument(
        "--params",
        type=Path,
        help="JSON object of parameter overrides; changing a protocol parameter makes the run non-standard",
    )
    parser.add_argument("--job-id", help="the job's id, recorded in the provenance")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
        result = evaluate(config, lambda submission, params: open_engine(args.engine, submission, params))
        path = write_summary(args.state_dir, result)
    except InfrastructureError as exc:
        print(f"infrastructure failure, no summary written: {exc}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    except OSError as exc:
        print(f"infrastructure failure, no summary written: {exc}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    verdict = "valid" if result["valid"] else "invalid"
    score = result.get("tps")
    shown = f"{score:.2f} tokens/s" if isinstance(score, float) else "no score"
    proxy = " (proxy: never ranks)" if result["proxy"] else ""
    print(f"{verdict}: {shown}, ppl {result.get('ppl')}{proxy} -> {path}")
    for reason in result["reasons"]:
        print(f"  - {reason}")
    for note in result["notes"]:
        print(f"  note: {note}")
    return 0


def _config(args: argparse.Namespace) -> RunConfig:
    params = Params()
    if args.params:
        params = params.with_overrides(load_overrides(args.params), source=str(args.params.name))
    if args.time_budget_s is not None:
        params = params.with_overrides({"time_budget_s": args.time_budget_s}, source="--time-budget-s")
    if args.ppl_cap is not None and not args.ppl_cap > 1:
        raise InfrastructureError(f"--ppl-cap must be a perplexity above 1, not {args.ppl_cap}")
    if args.private_dir is not None:
        data_dir, private = args.private_dir, True
    else:
        data_dir, private = _public_data(args), False
    return RunConfig(
        submission_dir=args.submission_dir,
        data_dir=data_dir,
        private=private,
        params=params,
        ppl_cap=args.ppl_cap,
        job_id=args.job_id,
        proxy=args.engine != "vllm",
    )


def _public_data(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    if args.engine == "vllm":
        # data/ also carries the bundled sample (data/sample/): the public set is there only once the
        # organizers built it with scripts/ and uploaded it beside the harness.
        if (PUBLIC_DATA / "prompts.json").is_file():
            return PUBLIC_DATA
        raise InfrastructureError(
            f"no public set: {PUBLIC_DATA / 'prompts.json'} is missing (the organizers build it with "
            "challenge_gemma/scripts/ and upload it to the harness folder's data/); pass --data-dir"
        )
    for folder in SAMPLE_DATA:
        if folder.is_dir():
            return folder
    raise InfrastructureError("no sample set for the CPU stand-ins (data/sample/); pass --data-dir")


if __name__ == "__main__":
    sys.exit(main())
