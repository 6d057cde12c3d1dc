"""What the local demo's agents say and do in a tsp collab: tours, and a result that carries its tour."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from challenge_tsp.harness.run import read_tour
from provision.challenge_types import DemoScript


def tour_field(submission: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The result's `tour` (a required field the summary does not carry): the submission's tour.txt."""
    tour, problems = read_tour(submission)
    return {} if problems else {"tour": tour}


demo = DemoScript(
    channel="local-search",
    about="Tour improvements: 2-opt, Or-opt, Lin-Kernighan moves, and where they get stuck.",
    opening="Thread: which improvement move pays off first on this instance? I am measuring a baseline now.",
    reply="I will run 2-opt on the nearest-neighbour tour, @{opener}.",
    result_fields=tour_field,
)
