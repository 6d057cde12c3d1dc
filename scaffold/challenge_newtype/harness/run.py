#!/usr/bin/env python3
"""Score one submission of the newtype challenge and write summary.json (a stand-in: replace it).

The job contract of the kit:

    python run.py --submission-dir DIR --state-dir DIR [--private-dir DIR]

The submission folder holds `predictions.json`, a list of numbers, one per target in
targets.json; the score `mae` is their mean absolute error. Exit status 0 when summary.json was
written, whatever the verdict; 2 for wrong arguments or folders; 1 when the summary cannot be
written. A harness reads only its own folder, the submission and the private folder, and a
problem with the submission becomes a reason in the summary, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PREDICTIONS_FILE = "predictions.json"
SUMMARY_FILE = "summary.json"
MAX_SUBMISSION_BYTES = 1 << 20
EVALUATOR_VERSION = "0.1.0"
TARGETS_FILE = Path(__file__).resolve().with_name("targets.json")


def load_targets(path: Path) -> list[float]:
    """Read the targets the predictions are scored against."""
    return [float(x) for x in json.loads(path.read_text(encoding="utf-8"))]


def prediction_problems(predictions: object, count: int) -> list[str]:
    """Every way `predictions` is not a list of `count` finite numbers; empty when it is one."""
    if not isinstance(predictions, list):
        return [f"the predictions must be a list of numbers, not {type(predictions).__name__}"]
    problems = []
    if len(predictions) != count:
        problems.append(f"there are {len(predictions)} predictions; there are {count} targets")
    bad = [i for i, p in enumerate(predictions) if not _finite(p)]
    if bad:
        problems.append(f"prediction {bad[0]} is not a finite number" + (f" ({len(bad) - 1} more)" if bad[1:] else ""))
    return problems


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def mean_absolute_error(targets: Sequence[float], predictions: Sequence[float]) -> float:
    """The mean of |prediction - target|."""
    return sum(abs(p - t) for p, t in zip(predictions, targets, strict=True)) / len(targets)


def read_predictions(submission_dir: Path) -> tuple[object, list[str]]:
    """Read predictions.json, refusing links, huge files and anything that is not JSON."""
    path = submission_dir / PREDICTIONS_FILE
    if path.is_symlink() or not path.is_file():
        return None, [f"no {PREDICTIONS_FILE} file in the submission folder"]
    with path.open("rb") as handle:
        raw = handle.read(MAX_SUBMISSION_BYTES + 1)
    if len(raw) > MAX_SUBMISSION_BYTES:
        return None, [f"{PREDICTIONS_FILE} is larger than {MAX_SUBMISSION_BYTES} bytes"]
    try:
        return json.loads(raw), []
    except ValueError as exc:
        return None, [f"{PREDICTIONS_FILE} is not JSON: {exc}"]


def score_submission(submission_dir: Path) -> dict[str, Any]:
    """Check and score a submission folder; the summary says why when it is invalid."""
    targets = load_targets(TARGETS_FILE)
    predictions, problems = read_predictions(submission_dir)
    if not problems:
        problems = prediction_problems(predictions, len(targets))
    summary: dict[str, Any] = {
        "valid": not problems,
        "reasons": problems,
        "proxy": False,  # True when a stand-in (a CPU engine, a fake) produced the numbers
        "provenance": {"evaluator": "newtype-harness", "evaluator_version": EVALUATOR_VERSION},
    }
    if not problems and isinstance(predictions, list):
        summary["mae"] = mean_absolute_error(targets, predictions)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness; see the module docstring for the contract."""
    parser = argparse.ArgumentParser(prog="run.py", description="Score a newtype submission.")
    parser.add_argument("--submission-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--private-dir", type=Path)
    args = parser.parse_args(argv)
    for flag, folder in (("--submission-dir", args.submission_dir), ("--private-dir", args.private_dir)):
        if folder is not None and not folder.is_dir():
            parser.error(f"{flag} {folder}: no such folder")
    summary = score_submission(args.submission_dir)
    try:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        partial = args.state_dir / (SUMMARY_FILE + ".partial")
        partial.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, args.state_dir / SUMMARY_FILE)
    except OSError as exc:
        print(f"run.py: cannot write {SUMMARY_FILE}: {exc.strerror}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
