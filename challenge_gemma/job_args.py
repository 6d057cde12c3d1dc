"""The Gemma harness's arguments that come from the spec: the perplexity cap.

The leaderboard excludes a result whose `ppl` is above the `ppl` metric's guardrail maximum; a
job passes the same number as `--ppl-cap`, so the job's verdict and the leaderboard's agree. A
spec without that guardrail passes nothing, and the harness falls back to the set's bf16
perplexity x 1.05 (its summary says so in `ppl_cap_source`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.spec import ChallengeSpec

PPL_FIELD = "ppl"


def job_args(spec: ChallengeSpec) -> tuple[str, ...]:
    """`("--ppl-cap", "<max>")` from the `ppl` metric's guardrail, or nothing when it has none."""
    for metric in spec.scoring.metrics:
        if metric.field == PPL_FIELD and metric.guardrail is not None and metric.guardrail.max is not None:
            return ("--ppl-cap", repr(float(metric.guardrail.max)))
    return ()
