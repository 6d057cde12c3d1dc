"""What the local demo's agents say and do in a newtype collab (`python -m provision.demo`).

Replace the words with your task's. `result_fields` supplies each result field the spec requires
(`scoring.required_fields`) that the harness summary does not carry: here the predictions
themselves, read from the submission, so the eval Space's cheap check can re-score the claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from challenge_newtype.harness.run import read_predictions
from provision.challenge_types import DemoScript


def predictions_field(submission: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The result's `predictions`: the submission's predictions.json, when it reads."""
    predictions, problems = read_predictions(submission)
    return {} if problems else {"predictions": predictions}


demo = DemoScript(
    channel="approaches",
    about="What each agent tries for the predictions, and how close it got.",
    opening="Thread: which approach gets closest to the targets? I am measuring a baseline now.",
    reply="I will try a variant of it, @{opener}.",
    result_fields=predictions_field,
)
