#!/usr/bin/env python3
"""Score one tour of the tsp challenge's instance and write summary.json.

The job contract of the kit:

    python run.py --submission-dir DIR --state-dir DIR [--private-dir DIR]

The submission folder holds `tour.txt`: the ids 0..n-1 of the cities in instance.json, each
exactly once, separated by spaces or newlines; `#` starts a comment. The tour closes back to its
first city. An edge between two cities has TSPLIB's EUC_2D length, their Euclidean distance
rounded to the nearest whole number, so a tour's length is an exact integer that every machine
reproduces.

Standard library only: any Python 3.11+ image runs it, and it reads nothing outside its own
folder and the submission. Exit status 0 when summary.json was written, whatever the verdict;
2 for wrong arguments or folders, 1 when the summary cannot be written. The private folder is
accepted and not used: a tour's length is exact, so there is nothing to re-measure on a held-out set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVALUATOR = "tsp-harness"
EVALUATOR_VERSION = "1.0.0"
TOUR_FILE = "tour.txt"
SUMMARY_FILE = "summary.json"
MAX_TOUR_BYTES = 1 << 20  # a 1,000-city tour takes under 5 KB
INSTANCE_FILE = Path(__file__).resolve().with_name("instance.json")


@dataclass(frozen=True)
class Instance:
    """The cities a tour visits."""

    name: str
    coordinates: tuple[tuple[int, int], ...]
    sha256: str

    @property
    def cities(self) -> int:
        """How many cities there are."""
        return len(self.coordinates)


def load_instance(path: Path = INSTANCE_FILE) -> Instance:
    """Read an instance file: a name and a list of integer `[x, y]` coordinates."""
    raw = path.read_bytes()
    data = json.loads(raw)
    coordinates = tuple((int(x), int(y)) for x, y in data["coordinates"])
    return Instance(str(data["name"]), coordinates, hashlib.sha256(raw).hexdigest())


def _show(word: object) -> str:
    """A short, escaped rendering of something a participant wrote, safe to print."""
    text = ascii(word)
    return text if len(text) <= 24 else text[:20] + "...'"


def parse_tour_text(text: str) -> tuple[list[int], list[str]]:
    """Read the city ids of a tour.txt.

    Returns:
        The ids in order, and the problems found (empty when every word is a city id).
    """
    ids: list[int] = []
    bad: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        for word in line.split("#", 1)[0].split():
            if word.isascii() and word.isdigit() and len(word) <= 9:
                ids.append(int(word))
            else:
                bad.append((number, word))
    if not bad:
        return ids, []
    number, word = bad[0]
    return ids, [f"line {number}: {_show(word)} is not a city id (a whole number from 0)" + _more(bad)]


def tour_problems(tour: object, cities: int) -> list[str]:
    """Every way `tour` fails to visit each of `cities` cities exactly once; empty when it does."""
    if not isinstance(tour, list):
        return [f"the tour must be a list of city ids, not {type(tour).__name__}"]
    problems = []
    if len(tour) != cities:
        problems.append(f"the tour lists {len(tour)} cities; the instance has {cities}, each visited once")
    seen = bytearray(cities)
    not_ids = [i for i, c in enumerate(tour) if not isinstance(c, int) or isinstance(c, bool)]
    if not_ids:
        problems.append(f"entry {not_ids[0]} ({_show(tour[not_ids[0]])}) is not a city id" + _more(not_ids))
    outside, twice = [], []
    for city in tour:
        if not isinstance(city, int) or isinstance(city, bool):
            continue
        if not 0 <= city < cities:
            outside.append(city)
        elif seen[city]:
            twice.append(city)
        else:
            seen[city] = 1
    if outside:
        problems.append(f"city {_show(outside[0])} does not exist; ids run from 0 to {cities - 1}" + _more(outside))
    if twice:
        problems.append(f"city {twice[0]} is visited more than once" + _more(twice))
    missing = cities - sum(seen)
    if missing and (twice or outside or not_ids):
        problems.append("1 city is never visited" if missing == 1 else f"{missing} cities are never visited")
    return problems


def _more(items: Sequence[object]) -> str:
    return f" ({len(items) - 1} more like it)" if len(items) > 1 else ""


def tour_length(coordinates: Sequence[tuple[int, int]], tour: Sequence[int]) -> int:
    """The closed tour's length under TSPLIB EUC_2D: each edge rounded to the nearest integer."""
    total = 0
    x0, y0 = coordinates[tour[-1]]
    for city in tour:
        x1, y1 = coordinates[city]
        total += int(math.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2) + 0.5)
        x0, y0 = x1, y1
    return total


def read_tour(submission_dir: Path) -> tuple[list[int], list[str]]:
    """Read tour.txt from a submission folder, refusing links, huge files and non-text."""
    path = submission_dir / TOUR_FILE
    if path.is_symlink():
        return [], [f"{TOUR_FILE} is a symbolic link; submit the file itself"]
    if not path.exists():
        return [], [f"no {TOUR_FILE} in the submission folder: write the tour there, one city id per line"]
    if not path.is_file():
        return [], [f"{TOUR_FILE} is not a regular file"]
    with path.open("rb") as handle:
        raw = handle.read(MAX_TOUR_BYTES + 1)
    if len(raw) > MAX_TOUR_BYTES:
        return [], [f"{TOUR_FILE} is larger than {MAX_TOUR_BYTES} bytes; a tour is one id per city"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [f"{TOUR_FILE} is not UTF-8 text (byte {exc.start})"]
    return parse_tour_text(text)


def score_submission(submission_dir: Path, instance: Instance) -> dict[str, Any]:
    """Check and score a submission folder; the summary says why when it is invalid."""
    tour, problems = read_tour(submission_dir)
    if not problems:
        problems = tour_problems(tour, instance.cities)
    summary: dict[str, Any] = {
        "valid": not problems,
        "reasons": problems,
        "proxy": False,  # the length is exact on any machine: nothing here stands in for anything
        "cities": instance.cities,
        "provenance": {
            "evaluator": EVALUATOR,
            "evaluator_version": EVALUATOR_VERSION,
            "python_version": platform.python_version(),
            "instance": instance.name,
            "instance_sha256": instance.sha256,
        },
    }
    if not problems:
        summary["tour_length"] = tour_length(instance.coordinates, tour)
    return summary


def write_summary(state_dir: Path, summary: dict[str, Any]) -> Path:
    """Write summary.json atomically, so a reader never sees half of it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / SUMMARY_FILE
    partial = state_dir / (SUMMARY_FILE + ".partial")
    partial.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness; see the module docstring for the contract."""
    parser = argparse.ArgumentParser(prog="run.py", description="Score a tour of the tsp challenge's instance.")
    parser.add_argument("--submission-dir", type=Path, required=True, help=f"folder holding {TOUR_FILE}")
    parser.add_argument("--state-dir", type=Path, required=True, help=f"folder to write {SUMMARY_FILE} into")
    parser.add_argument("--private-dir", type=Path, help="accepted for the job contract; tsp needs no private set")
    args = parser.parse_args(argv)
    if not args.submission_dir.is_dir():
        parser.error(f"--submission-dir {args.submission_dir}: no such folder")
    if args.private_dir is not None and not args.private_dir.is_dir():
        parser.error(f"--private-dir {args.private_dir}: no such folder")
    summary = score_submission(args.submission_dir, load_instance())
    try:
        written = write_summary(args.state_dir, summary)
    except OSError as exc:
        print(f"run.py: cannot write {SUMMARY_FILE} into {args.state_dir}: {exc.strerror}", file=sys.stderr)
        return 1
    verdict = (
        f"tour_length {summary['tour_length']}" if summary["valid"] else "invalid: " + "; ".join(summary["reasons"])
    )
    print(f"{written}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
