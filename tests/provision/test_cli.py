"""The `collab` command: exit codes, output forms, and no traceback for any user error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provision import __version__
from provision.cli import main


@pytest.fixture
def collab(tmp_path: Path, example_spec: Path) -> Path:
    shutil.copy(example_spec, tmp_path / "challenge.yaml")
    return tmp_path


def test_validate_a_valid_collab(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(collab)]) == 0
    out = capsys.readouterr().out
    assert "challenge.yaml: valid (gemma challenge" in out
    assert "0 warning(s)" in out


def test_validate_accepts_the_spec_file_itself(collab: Path) -> None:
    assert main(["validate", str(collab / "challenge.yaml")]) == 0


def test_validate_reports_every_error_then_a_count(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = collab / "challenge.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("mode: jobs", "mode: jobz").replace("flavor: a10g-small", "flavor: a10g"), "utf-8")
    assert main(["validate", str(collab)]) == 1
    out = capsys.readouterr().out
    assert "$.verification.mode: not one of the allowed values" in out
    assert "did you mean 'jobs'?" in out
    assert "$.jobs.flavor" in out
    assert out.rstrip().endswith("2 error(s), 0 warning(s)")


def test_validate_json(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = collab / "challenge.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("slug: gemma-collab", "slug: Gemma"), "utf-8")
    assert main(["validate", "--json", str(collab)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["format_version"] == 1 and report["valid"] is False
    [problem] = report["problems"]
    assert problem["path"] == "$.challenge.slug"
    assert problem["line"] > 1 and problem["col"] > 1
    assert problem["found"] == "'Gemma'"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing-folder", "no such folder"),
        (".", "no challenge.yaml in"),
    ],
)
def test_validate_where_there_is_no_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], target: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", target if target == "." else str(tmp_path / target / "challenge.yaml")]) == 1
    assert message in capsys.readouterr().out


def test_migrate_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "challenge.yaml"
    spec.write_text("spec_version: 1\nscoring:\n  order: desc\n", encoding="utf-8")
    assert main(["migrate", "--check", str(tmp_path)]) == 2
    assert "would migrate spec_version 1 -> 2" in capsys.readouterr().out
    assert main(["migrate", str(tmp_path)]) == 0
    assert "direction: maximize" in spec.read_text(encoding="utf-8")
    assert main(["migrate", "--check", str(tmp_path)]) == 0


def test_migrate_refuses_a_broken_file_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "challenge.yaml").write_text("spec_version: 7\n", encoding="utf-8")
    assert main(["migrate", str(tmp_path)]) == 1
    assert "newer than this kit understands" in capsys.readouterr().err


def test_console_script_runs_and_reports_its_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "provision.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"collab {__version__}"


def test_an_unknown_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["plan-all"])
    assert caught.value.code == 2
    assert "invalid choice: 'plan-all'" in capsys.readouterr().err
