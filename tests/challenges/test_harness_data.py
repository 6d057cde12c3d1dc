"""The `harness_data` hook: a folder of the package seeded beside the harness as `data/`.

The declaration refuses a folder that leaves the package or overlaps the harness folder; the
seed maps the folder under `<harness_prefix>data/` and refuses a harness that has a `data` of its
own; and the Gemma harness, copied as the seed lays it out, finds its sample there.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from type_conformance import run_harness, seeded_harness

from provision.challenge_types import ChallengeType, CheckResult, load_type
from provision.challenge_types.contract import HARNESS_DATA
from provision.errors import ChallengeTypeError
from provision.plan.desired import IGNORED_SOURCES
from provision.plan.seed import SeedError, type_harness_files


def _never(filename: str, frontmatter: Any, body: str, spec: Any) -> CheckResult:
    return CheckResult(None, "never decides")


def _package(root: Path) -> Path:
    """A type's package with a harness (run.py, a helper) and a data folder (two files, a cache)."""
    package = root / "challenge_demo"
    for path, text in {
        "harness/run.py": "print('run')\n",
        "harness/helper.py": "X = 1\n",
        "data/README.md": "# data\n",
        "data/sample/items.json": "[]\n",
        "data/__pycache__/x.pyc": "",
    }.items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_text(text, encoding="utf-8")
    return package


def _declare(package: Path, **changes: Any) -> ChallengeType:
    fields: dict[str, Any] = {
        "name": "demo",
        "title": "Demo",
        "summary": "a demo type",
        "package_dir": package,
        "cheap_check": _never,
    }
    return ChallengeType(**{**fields, **changes})


def test_no_data_by_default(tmp_path: Path) -> None:
    declared = _declare(_package(tmp_path))
    assert declared.harness_data is None and declared.harness_data_dir is None
    assert sorted(type_harness_files(declared, "harness/", IGNORED_SOURCES)) == ["harness/helper.py", "harness/run.py"]


def test_declared_data_is_seeded_beside_run_py(tmp_path: Path) -> None:
    package = _package(tmp_path)
    declared = _declare(package, harness_data="data")
    assert declared.harness_data_dir == package / "data"
    files = type_harness_files(declared, "bench/harness", IGNORED_SOURCES)  # the prefix gets its '/'
    assert sorted(files) == [
        "bench/harness/data/README.md",
        "bench/harness/data/sample/items.json",
        "bench/harness/helper.py",
        "bench/harness/run.py",
    ]
    assert files["bench/harness/data/sample/items.json"].source == package / "data" / "sample" / "items.json"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("../elsewhere", "'..' leaves the package folder"),
        ("/srv/data", "write a relative path"),
        ("", "a path relative to the package folder"),
        ("harness", "a folder apart from the harness folder"),
        ("harness/data", "a folder apart from the harness folder"),
        (".", "a folder apart from the harness folder"),
    ],
)
@pytest.mark.parametrize("key", ["harness_data", "private_sample"])
def test_a_misplaced_data_folder_is_refused(tmp_path: Path, value: str, message: str, key: str) -> None:
    with pytest.raises(ChallengeTypeError, match=f"{key} .*{message}"):
        _declare(_package(tmp_path), **{key: value})


def test_the_private_sample_is_apart_from_the_public_data(tmp_path: Path) -> None:
    """The public data is uploaded with the harness for everyone: a private sample inside it would be too."""
    package = _package(tmp_path)
    with pytest.raises(ChallengeTypeError, match="private_sample 'data/private': a folder apart from harness_data"):
        _declare(package, harness_data="data", private_sample="data/private")
    assert _declare(package, harness_data="data", private_sample="private").private_sample_dir == package / "private"


def test_a_data_link_out_of_the_package_is_refused(tmp_path: Path) -> None:
    package = _package(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (package / "linked").symlink_to(outside)
    with pytest.raises(ChallengeTypeError, match="outside the package folder"):
        _declare(package, harness_data="linked")


def test_a_missing_data_folder_stops_the_seed(tmp_path: Path) -> None:
    declared = _declare(_package(tmp_path), harness_data="public")  # a type under construction loads
    with pytest.raises(SeedError, match=r"declares harness_data 'public', but challenge_demo/public/ is not a folder"):
        type_harness_files(declared, "harness/", IGNORED_SOURCES)


def test_a_harness_with_its_own_data_clashes(tmp_path: Path) -> None:
    package = _package(tmp_path)
    (package / "harness" / HARNESS_DATA).mkdir()
    declared = _declare(package, harness_data="data")
    with pytest.raises(SeedError, match=r"would both be seeded as harness/data/"):
        type_harness_files(declared, "harness/", IGNORED_SOURCES)


def test_gemma_declares_its_sets_and_its_harness_needs_them(tmp_path: Path) -> None:
    """The Gemma harness, copied as seeded, finds its sample in data/; without the data it cannot run."""
    gemma = load_type("gemma")
    assert gemma.harness_data_dir == gemma.package_dir / "data"
    example = gemma.examples_dir / "valid" / "bf16_baseline"

    done, summary = run_harness(gemma, seeded_harness(gemma, tmp_path / "seeded"), example, tmp_path / "run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary is not None and summary["valid"] is True and summary["prompt_set"] == "sample"

    bare = dataclasses.replace(gemma, harness_data=None)
    done, summary = run_harness(bare, seeded_harness(bare, tmp_path / "bare"), example, tmp_path / "bare-run")
    assert done.returncode == 3 and summary is None  # an infrastructure failure: the launcher refunds it
    assert "no sample set" in done.stderr
