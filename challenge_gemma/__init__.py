"""The Gemma challenge: make google/gemma-4-E4B-it decode fast with vLLM on one A10G.

The reference challenge type. It registers through the `collab.challenge_types` entry point,
exactly as a third-party type would. The harness runs on a CPU with its fake engine
(`--engine fake`), which is how the conformance suite runs it. `data/` (the bundled sample set
the CPU stand-ins read) is uploaded beside the harness as `data/`, where the organizers add the
public set. `private_sample/` is a stand-in private set of other prompts that local mode seeds into
the audit bucket, so a local rehearsal re-runs on a private set (on the Hub the organizers upload
the real one). Its formats, the summary the harness writes among them, are defined once, in
`schemas/`, and travel only with Gemma collabs. Every job passes the spec's perplexity cap
(`job_args`: `--ppl-cap`), the one the leaderboard applies. What a submission may not set in vLLM
is data, `harness/gemma_eval/denied.json`: the harness refuses it, and the backend shows it as the
type's standing rules beside the organizers' rulings.
"""

from pathlib import Path

from challenge_gemma.check import cheap_check
from challenge_gemma.demo import demo
from challenge_gemma.job_args import job_args
from provision.challenge_types import ChallengeType

challenge_type = ChallengeType(
    name="gemma",
    title="Gemma 4 E4B fast decode",
    summary="Gemma 4 E4B decode tokens/s with vLLM on one A10G",
    package_dir=Path(__file__).parent,
    cheap_check=cheap_check,
    harness_data="data",
    private_sample="private_sample",
    summary_schema="schemas/gemma-summary.schema.json",
    cpu_args=("--engine", "fake"),
    submission_config="submission.json",
    job_args=job_args,
    denylist="gemma_eval/denied.json",
    demo=demo,
)
