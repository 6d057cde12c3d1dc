"""A collab rendered before `provision/` moved into its rooms updates cleanly to the current tree.

The old template is this repository's own history: the commit before the one that moved
`provision/desired.py` into `provision/plan/`. A collab rendered from it, committed, and updated
with `copier update` must come out exactly as a fresh render of the working tree: every old
module gone, every new one there, nothing left to merge. Its `collab` command, spec migration and
demo entry point then run from the updated files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import copier
import pytest
from template_harness import REPO, commit_all, copy_working_tree, files_under, git, init_repo, read_answers, render

# Copier updates of rendered collabs, each for tens of seconds: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.slow

MOVED = "provision/desired.py"  # a module of the flat layout, deleted by the move
OLD_TAG, NEW_TAG = "v1.0.0", "v2.0.0"
DATA = {"challenge_type": "gemma"}


def commit_before_the_move() -> str:
    """The last commit of the flat layout; skip, saying why, where the clone has no history."""
    mover = git(REPO, "rev-list", "-1", "HEAD", "--", MOVED).strip()
    parent = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{mover}~1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if not mover or parent.returncode != 0:
        pytest.skip(f"needs the repository's history (a full clone) to find the commit that moved {MOVED}")
    return parent.stdout.strip()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository: the flat layout tagged v1.0.0, the working tree on top tagged v2.0.0."""
    old = commit_before_the_move()
    src = tmp_path_factory.mktemp("history") / "template"
    git(REPO, "clone", "--quiet", "--no-checkout", str(REPO), str(src))
    git(src, "checkout", "--quiet", "-B", "main", old)
    git(src, "tag", OLD_TAG)
    assert (src / MOVED).is_file(), f"{old} should still have {MOVED}"
    git(src, "rm", "-r", "--quiet", ".")
    copy_working_tree(src)
    commit_all(src, "the working tree", NEW_TAG)
    return src


def run_in(collab: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=collab, capture_output=True, text=True, check=False, timeout=120)


def test_an_old_collab_updates_to_the_new_layout(history: Path, tmp_path: Path) -> None:
    project = render(history, tmp_path / "collab", DATA, vcs_ref=OLD_TAG)
    assert (project / MOVED).is_file(), "the old render must have the flat layout, or nothing below means anything"
    init_repo(project)
    commit_all(project, "collab rendered from the flat layout")

    copier.run_update(project, defaults=True, overwrite=True, unsafe=True, vcs_ref=NEW_TAG, quiet=True)

    assert read_answers(project)["_commit"] == NEW_TAG
    fresh = render(history, tmp_path / "fresh", DATA, vcs_ref=NEW_TAG)
    updated = {p.relative_to(project).as_posix(): p.read_bytes() for p in files_under(project)}
    expected = {p.relative_to(fresh).as_posix(): p.read_bytes() for p in files_under(fresh)}
    assert sorted(updated.keys() - expected.keys()) == [], "files of the old layout are left over"
    assert sorted(expected.keys() - updated.keys()) == [], "files of the new layout are missing"
    assert [name for name in expected if updated[name] != expected[name]] == [], "the update left differences"

    validate = run_in(project, "-m", "provision.cli", "validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    migrate = run_in(project, "-m", "provision.migrations", "--check", "challenge.yaml")
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    demo = run_in(project, "-m", "provision.demo", "--help")
    assert demo.returncode == 0 and "usage: python -m provision.demo" in demo.stdout, demo.stdout + demo.stderr
