"""Suggest threshold values from summaries of honest GPU runs (CALIBRATION.md gives the procedure).

    python3 -m gemma_eval.calibrate --out calibration.json runs/*/summary.json

Every summary given must come from an honest configuration (bf16, int4, speculative decoding with
standard acceptance) on the real engine. From them:

- the relative standard deviation of `tps` between jobs of the same submission (grouped by
  submission hash; groups of at least 3 count), pooled: it belongs in the spec's
  `scoring.noise.sigma`, which decides ties on the leaderboard; the harness does not read it;
- `consistency_margin_nats`: the smallest margin-histogram edge above which no honest run had a
  position, so honest near-ties are all tolerated, and `consistency_max_rate` twice the worst rate
  honest runs reach at that margin (with a floor), both read from the histograms;
- `agreement_top1_min`: the lowest honest top-1 agreement minus a safety margin.

The output is a calibration.json to review and place beside the private set; nothing is applied
automatically.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gemma_eval.params import Params

AGREEMENT_SAFETY = 0.02
RATE_FLOOR = 0.0005


def sigma_rel(summaries: Sequence[Mapping[str, Any]]) -> float | None:
    """Pooled relative sd of `tps` over groups of at least 3 jobs of one submission; None without such a group."""
    groups: dict[str, list[float]] = defaultdict(list)
    for s in summaries:
        tps = s.get("tps")
        if isinstance(tps, int | float) and tps > 0:
            groups[str(s.get("provenance", {}).get("submission_sha256"))].append(float(tps))
    terms = [(len(v) - 1, statistics.variance(v) / statistics.mean(v) ** 2) for v in groups.values() if len(v) >= 3]
    dof = sum(d for d, _ in terms)
    return math.sqrt(sum(d * var for d, var in terms) / dof) if dof else None


def margin_and_rate(summaries: Sequence[Mapping[str, Any]]) -> tuple[float, float] | None:
    """(margin, rate gate) from the honest runs' margin histograms; None when no run has one."""
    histograms = [s["consistency"] for s in summaries if isinstance(s.get("consistency"), Mapping)]
    if not histograms:
        return None
    edges = list(histograms[0]["margin_histogram"]["edges_nats"])
    top = 0
    for h in histograms:
        counts = h["margin_histogram"]["counts"]
        occupied = [i for i, c in enumerate(counts) if c]
        top = max(top, max(occupied, default=-1) + 1)
    # Bucket i holds margins below edges[i]; a margin at edges[top - 1] covers every honest position.
    margin = edges[min(top, len(edges)) - 1] if top else edges[0]
    worst = max(
        sum(c for c, upper in zip(h["margin_histogram"]["counts"], [*edges, math.inf], strict=True) if upper > margin)
        / max(h["positions"], 1)
        for h in histograms
    )
    return margin, max(2 * worst, RATE_FLOOR)


def agreement_gate(summaries: Sequence[Mapping[str, Any]]) -> float | None:
    """The lowest honest top-1 agreement minus the safety margin."""
    values = [s["agreement"]["top1"] for s in summaries if isinstance(s.get("agreement"), Mapping)]
    values = [v for v in values if isinstance(v, int | float)]
    return round(min(values) - AGREEMENT_SAFETY, 4) if values else None


def suggest(summaries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Threshold values the summaries support; parameters they say nothing about are left out."""
    out: dict[str, float] = {}
    if (pair := margin_and_rate(summaries)) is not None:
        out["consistency_margin_nats"], out["consistency_max_rate"] = pair
    if (gate := agreement_gate(summaries)) is not None:
        out["agreement_top1_min"] = gate
    Params().with_overrides(out, allowed="threshold", source="suggestion")  # the values must be acceptable
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m gemma_eval.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="summary.json files of honest real-engine runs")
    parser.add_argument("--out", type=Path, help="write calibration.json here (default: print it)")
    args = parser.parse_args(argv)
    summaries = [json.loads(p.read_text(encoding="utf-8")) for p in args.summaries]
    rejected = [str(p) for p, s in zip(args.summaries, summaries, strict=True) if s.get("proxy") or not s.get("valid")]
    if rejected:
        parser.error(f"only valid real-engine runs calibrate; not: {', '.join(rejected)}")
    doc: dict[str, Any] = {
        "format": "gemma-calibration",
        "version": 1,
        "measured": f"gemma_eval.calibrate over {len(summaries)} summaries",
        "params": suggest(summaries),
    }
    if (sigma := sigma_rel(summaries)) is not None:
        doc["noise"] = {"sigma_rel": round(sigma, 6), "for": "scoring.noise.sigma in challenge.yaml"}
    text = json.dumps(doc, indent=2) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
