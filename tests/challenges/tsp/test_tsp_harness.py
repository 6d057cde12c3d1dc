"""The tsp harness: exact lengths, and every malformed, oversized or sneaky tour refused with a reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from challenge_tsp.harness import run
from challenge_tsp.harness.run import (
    MAX_TOUR_BYTES,
    Instance,
    load_instance,
    parse_tour_text,
    score_submission,
    tour_length,
    tour_problems,
)

HARNESS = Path(run.__file__).parent
SQUARE = Instance("square", ((0, 0), (3, 0), (3, 4), (0, 4)), "0" * 64)


def test_lengths_follow_tsplib_euc_2d() -> None:
    assert tour_length(SQUARE.coordinates, [0, 1, 2, 3]) == 3 + 4 + 3 + 4
    assert tour_length(SQUARE.coordinates, [0, 2, 1, 3]) == 5 + 4 + 5 + 4
    # sqrt(2) = 1.41 rounds down, sqrt(5) = 2.24 down, sqrt(6.25) = 2.5 up (nint).
    assert tour_length(((0, 0), (1, 1)), [0, 1]) == 2
    assert tour_length(((0, 0), (1, 2)), [0, 1]) == 4
    assert tour_length(((0, 0), (0, 5), (0, 0)), [0, 1, 2]) == 10


def test_a_tour_can_be_written_freely() -> None:
    ids, problems = parse_tour_text("# my tour\r\n0 1\t2\n\n  3 # back home\n")
    assert (ids, problems) == ([0, 1, 2, 3], [])


@pytest.mark.parametrize("word", ["-1", "1e3", "0x10", "1.0", "\uff11", "9999999999", "\x1b[2J"])
def test_words_that_are_not_city_ids(word: str) -> None:
    ids, problems = parse_tour_text(f"0 1\n{word} 2\n")
    assert ids == [0, 1, 2]
    [problem] = problems
    assert problem.startswith("line 2: ") and "is not a city id" in problem
    assert "\x1b" not in problem, "a participant's bytes are escaped before they are shown"


def test_many_bad_words_are_counted_not_listed() -> None:
    _, [problem] = parse_tour_text("x " * 10_000)
    assert problem.endswith("(9999 more like it)")
    assert len(problem) < 120


@pytest.mark.parametrize(
    ("tour", "expected"),
    [
        ([0, 1, 2, 3], []),
        ([0, 1, 2], ["the tour lists 3 cities; the instance has 4, each visited once"]),
        ([0, 1, 2, 2], ["city 2 is visited more than once", "1 city is never visited"]),
        ([0, 1, 2, 9], ["city 9 does not exist; ids run from 0 to 3", "1 city is never visited"]),
        ([0, 1, 2, True], ["entry 3 (True) is not a city id", "1 city is never visited"]),
        ([0, 1, 2, "3"], ["entry 3 ('3') is not a city id", "1 city is never visited"]),
        ("0 1 2 3", ["the tour must be a list of city ids, not str"]),
        (None, ["the tour must be a list of city ids, not NoneType"]),
        (
            [0, 1, 2, 3, 3, 3],
            [
                "the tour lists 6 cities; the instance has 4, each visited once",
                "city 3 is visited more than once (1 more like it)",
            ],
        ),
        (
            [-1, 10**30, 1, 2],
            ["city -1 does not exist; ids run from 0 to 3 (1 more like it)", "2 cities are never visited"],
        ),
    ],
)
def test_tour_problems(tour: Any, expected: list[str]) -> None:
    assert tour_problems(tour, 4) == expected


def _submit(folder: Path, content: bytes | str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if content is not None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / "tour.txt").write_bytes(data)
    return folder


def test_a_valid_tour_is_scored(tmp_path: Path) -> None:
    instance = load_instance()
    summary = score_submission(_submit(tmp_path, "\n".join(map(str, range(instance.cities)))), instance)
    assert summary["valid"] is True and summary["reasons"] == []
    assert summary["tour_length"] == tour_length(instance.coordinates, list(range(instance.cities)))
    assert summary["provenance"]["instance_sha256"] == instance.sha256
    assert summary["proxy"] is False


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no tour.txt in the submission folder"),
        (b"0 1 2\n\xff\xfe", "tour.txt is not UTF-8 text (byte 6)"),
        (b"0 " * (MAX_TOUR_BYTES // 2 + 1), f"tour.txt is larger than {MAX_TOUR_BYTES} bytes"),
        ("", "the tour lists 0 cities; the instance has 1000"),
    ],
)
def test_bad_files_are_reasons(tmp_path: Path, content: bytes | None, reason: str) -> None:
    summary = score_submission(_submit(tmp_path / "s", content), load_instance())
    assert summary["valid"] is False and "tour_length" not in summary
    assert summary["reasons"][0].startswith(reason)


def test_a_linked_tour_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2 " + " ".join(map(str, range(1000))), encoding="utf-8")
    folder = _submit(tmp_path / "s")
    (folder / "tour.txt").symlink_to(secret)
    summary = score_submission(folder, load_instance())
    assert summary["reasons"] == ["tour.txt is a symbolic link; submit the file itself"]
    assert "hunter2" not in json.dumps(summary)


def test_a_folder_named_tour_txt(tmp_path: Path) -> None:
    folder = _submit(tmp_path / "s")
    (folder / "tour.txt").mkdir()
    assert score_submission(folder, load_instance())["reasons"] == ["tour.txt is not a regular file"]


def _run(harness: Path, *args: str, isolated: bool = True) -> subprocess.CompletedProcess[str]:
    flags = ["-S", "-E", "-s"] if isolated else []
    return subprocess.run(
        [sys.executable, *flags, str(harness / "run.py"), *args], capture_output=True, text=True, check=False
    )


def test_runs_alone_on_the_standard_library(tmp_path: Path) -> None:
    """A copy of the harness folder, without site-packages: all a python:3.12 job image offers."""
    harness = tmp_path / "harness"
    shutil.copytree(HARNESS, harness, ignore=shutil.ignore_patterns("__pycache__"))
    submission = _submit(tmp_path / "submission", " ".join(map(str, reversed(range(1000)))))
    private = tmp_path / "private"
    private.mkdir()
    done = _run(
        harness,
        "--submission-dir",
        str(submission),
        "--state-dir",
        str(tmp_path / "state"),
        "--private-dir",
        str(private),
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "state" / "summary.json").read_text(encoding="utf-8"))
    assert summary["valid"] is True and summary["cities"] == 1000
    assert not list((tmp_path / "state").glob("*.partial"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --submission-dir, --state-dir"),
        (["--submission-dir", "{missing}", "--state-dir", "{state}"], "no such folder"),
        (["--submission-dir", "{ok}", "--state-dir", "{state}", "--private-dir", "{missing}"], "--private-dir"),
    ],
)
def test_wrong_arguments_exit_2_without_a_summary(tmp_path: Path, args: list[str], message: str) -> None:
    ok = _submit(tmp_path / "ok", "0")
    filled = [a.format(missing=tmp_path / "missing", state=tmp_path / "state", ok=ok) for a in args]
    done = _run(HARNESS, *filled)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()


def test_an_unwritable_state_folder_exits_1(tmp_path: Path) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("a file where the folder should be", encoding="utf-8")
    done = _run(HARNESS, "--submission-dir", str(_submit(tmp_path / "s", "0")), "--state-dir", str(blocked))
    assert done.returncode == 1
    assert "cannot write summary.json" in done.stderr and "Traceback" not in done.stderr


def test_summaries_are_checked_against_the_kit_schema_through_the_type(tmp_path: Path) -> None:
    from provision.challenge_types import load_type

    validator = load_type("tsp").summary_validator()
    instance = load_instance()
    for tour in ("\n".join(map(str, range(instance.cities))), "0 1 2"):
        summary = score_submission(_submit(tmp_path / str(len(tour)), tour), instance)
        assert list(validator.iter_errors(summary)) == []
    broken = {**summary, "reasons": "not a list"}  # a field only the kit's schema defines
    assert [e.validator for e in validator.iter_errors(broken)] == ["type"]
    unsigned = {**summary, "provenance": {k: v for k, v in summary["provenance"].items() if k != "evaluator_version"}}
    assert [e.validator for e in validator.iter_errors(unsigned)] == ["required"]
