"""`collab new-type` writes a type that passes the whole conformance suite once it is registered.

The scaffolded package is made importable and registered for the test's duration (an entry point
added to the registry's view), then run through the same `ConformanceSuite` as the bundled types.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from type_conformance import ConformanceSuite, fragment

from provision.challenge_types import ChallengeType, load_type, scaffold
from provision.challenge_types.scaffold import ScaffoldError, scaffold_type
from provision.cli import main
from provision.spec import type_names

NAME = "knap"
TITLE = 'Pack "it" \\ well: ü'


def _register(monkeypatch: pytest.MonkeyPatch, root: Path, name: str) -> None:
    """Make challenge_<name> in `root` importable and registered, as `pip install -e .` would."""
    real = type_names.registered

    def with_new_type() -> dict[str, EntryPoint]:
        found = real()
        found[name] = EntryPoint(name, f"challenge_{name}:challenge_type", type_names.ENTRY_POINT_GROUP)
        return found

    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(type_names, "registered", with_new_type)


@pytest.fixture(scope="class")
def ctype(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChallengeType]:
    root = tmp_path_factory.mktemp("repo")
    scaffold_type(NAME, root, TITLE)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _register(monkeypatch, root, NAME)
        yield load_type(NAME)
        for module in [m for m in sys.modules if m == f"challenge_{NAME}" or m.startswith(f"challenge_{NAME}.")]:
            del sys.modules[module]


class TestScaffoldedTypeConforms(ConformanceSuite):
    """The whole suite, on a type fresh from the scaffold."""

    def test_title_is_written_once_in_both_places(self, ctype: ChallengeType) -> None:
        assert ctype.title == TITLE == fragment(ctype).title

    def test_nothing_of_the_skeleton_name_is_left(self, ctype: ChallengeType) -> None:
        for path in ctype.package_dir.rglob("*"):
            assert scaffold.SKELETON_NAME not in path.name
            if path.is_file():
                assert scaffold.SKELETON_NAME not in path.read_text(encoding="utf-8"), path

    def test_summary_schema_includes_the_kits_by_reference(self, ctype: ChallengeType) -> None:
        validator = ctype.summary_validator()
        summary = {"valid": True, "reasons": [], "proxy": False, "mae": 0.5}
        assert [e.message for e in validator.iter_errors(summary)] == ["'provenance' is a required property"]
        summary["provenance"] = {"evaluator": NAME, "evaluator_version": "1"}
        assert list(validator.iter_errors(summary)) == []

    def test_package_is_lint_clean(self, ctype: ChallengeType) -> None:
        ruff = shutil.which("ruff")
        if ruff is None:
            pytest.skip("ruff is not installed (it is in the test extra)")
        config = Path(__file__).resolve().parents[2] / "pyproject.toml"
        for args in (["check"], ["format", "--check"]):
            done = subprocess.run(
                [ruff, *args, "--no-cache", "--config", str(config), str(ctype.package_dir)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil", "is not a type name"),
        ("Knap", "is not a type name"),
        ("knap-sack", "is not a type name"),
        ("k" * 33, "is not a type name"),
        ("", "is not a type name"),
        ("knap\n", "is not a type name"),
        ("gemma", "registered already"),
    ],
)
def test_bad_names_are_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        scaffold_type(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("title", ["", "   ", "two\nlines", "x" * 81, "bell\x07"])
def test_bad_titles_are_refused(tmp_path: Path, title: str) -> None:
    with pytest.raises(ScaffoldError, match="the title must be one line"):
        scaffold_type("knap", tmp_path, title)


def test_an_existing_package_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "challenge_knap").mkdir()
    (tmp_path / "challenge_knap" / "mine.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="exists already"):
        scaffold_type("knap", tmp_path)
    assert [p.name for p in (tmp_path / "challenge_knap").iterdir()] == ["mine.txt"]


def test_a_dangling_link_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "challenge_knap").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ScaffoldError, match="exists already"):
        scaffold_type("knap", tmp_path)
    assert not (tmp_path / "elsewhere").exists()


def test_without_the_skeleton_the_command_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(scaffold, "PACKAGE_DIR", tmp_path / "installed" / "provision")
    assert main(["new-type", "knap", "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "in a clone of the template repository" in err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == []


def test_cli_writes_the_package_and_prints_the_registration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-type", "knap", "--dest", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'knap = "challenge_knap:challenge_type"' in out
    assert "ln -s ../challenge_knap template/challenge_knap" in out
    assert (tmp_path / "challenge_knap" / "harness" / "run.py").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["challenge_knap"], "no scratch folder is left behind"


def test_cli_refuses_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "provision.cli", "new-type", "Bad Name", "--dest", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("collab new-type: 'Bad Name' is not a type name")
    assert "Traceback" not in done.stderr
