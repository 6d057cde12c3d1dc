"""Helpers for the template's tests: a git clone of the working tree, and rendering it.

Copier renders from git, so every test renders from a throwaway repository holding exactly the
working tree (tracked files plus untracked ones git does not ignore), committed and tagged. That
way uncommitted work is tested, `_commit` is a real PEP 440 tag, and `copier update` has
versions to move between.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import copier
import yaml

REPO = Path(__file__).resolve().parents[2]
HEAD_TAG = "v99.0.0"

# Our own commits must not depend on the machine's git configuration (identity, signing, hooks).
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "template-tests@example.invalid",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "template-tests@example.invalid",
}
GIT_OPTIONS = ("-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.hooksPath=/dev/null")


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its stdout; fail with git's own message."""
    done = subprocess.run(
        ["git", *GIT_OPTIONS, *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{done.stdout}{done.stderr}"
    return done.stdout


def working_tree_files() -> list[str]:
    """The repository's tracked files and untracked, not-ignored ones, as git lists them."""
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    # A tracked file deleted in the working tree is still listed; it is not part of the tree.
    return sorted({name for name in listed if name and os.path.lexists(REPO / name)})


def copy_working_tree(dest: Path) -> None:
    """Copy the working tree into `dest`, keeping symlinks as symlinks (template/ relies on them)."""
    for name in working_tree_files():
        source, target = REPO / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)


def init_repo(path: Path) -> None:
    """`git init` a folder on branch main."""
    git(path, "init", "--quiet", "--initial-branch=main")


def commit_all(path: Path, message: str, tag: str | None = None) -> None:
    """Stage everything, commit, and optionally tag the commit."""
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "--allow-empty", "-m", message)
    if tag:
        git(path, "tag", tag)


def make_template_repo(dest: Path, tag: str = HEAD_TAG) -> Path:
    """A git repository holding the working tree in one commit tagged `tag`."""
    dest.mkdir(parents=True)
    copy_working_tree(dest)
    init_repo(dest)
    commit_all(dest, "working tree", tag)
    return dest


def render(src: Path, dst: Path, data: dict[str, Any] | None = None, **kwargs: Any) -> Path:
    """`copier copy` with the defaults for unanswered questions, as a script would run it."""
    options: dict[str, Any] = {"defaults": True, "vcs_ref": "HEAD", "unsafe": True, "quiet": True, **kwargs}
    copier.run_copy(str(src), dst, data=data or {}, **options)
    return dst


def read_answers(collab: Path) -> dict[str, Any]:
    """The rendered `.copier-answers.yml`."""
    answers: dict[str, Any] = yaml.safe_load((collab / ".copier-answers.yml").read_text(encoding="utf-8"))
    return answers


def files_under(root: Path, skip: Iterable[str] = (".git",)) -> list[Path]:
    """Every file below `root` (symlinks included), outside the folders named in `skip`."""
    skipped = set(skip)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skipped)
        found += [Path(folder) / name for name in sorted(files)]
    return found
