"""`copier update` from an older template release keeps the owner's edits and migrates the spec once.

The history is built here: **v1.0.0** is the working tree with the spec written the old way
(`spec_version: 1`, `scoring.order: desc`) and a README that lacks its first section; **v2.0.0**
is the working tree itself. A collab is rendered at v1, committed, edited by its owner, committed,
and updated to v2.
"""

from __future__ import annotations

import re
from pathlib import Path

import copier
import pytest
import yaml
from template_harness import REPO, commit_all, copy_working_tree, files_under, git, init_repo, read_answers

from provision.spec import check_spec

# Copier updates of rendered collabs, each for tens of seconds: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.slow

CHALLENGE_TYPE = "gemma"
SPEC_TEMPLATE = "template/challenge.yaml.jinja"
FRAGMENT = f"challenge_{CHALLENGE_TYPE}/copier/spec.jinja"
README_TEMPLATE = "template/README.md.jinja"

OWNER_TITLE = "Our faster Gemma, by the night shift"
OWNER_COMMENT = "# Owner's note: the lossless track is the one that counts for the prize."
OWNER_README = "\n## Our own notes\n\nWe meet on Fridays; bring numbers.\n"
MIGRATED = "challenge.yaml: migrated spec_version 1 -> 2"


def replace_once(text: str, old: str, new: str, where: str) -> str:
    assert text.count(old) == 1, f"the upgrade test expects exactly one {old!r} in {where}; adapt the v1 edits"
    return text.replace(old, new)


def first_section(readme: str) -> str:
    """The README template's first `## ` section, heading to just before the next heading."""
    match = re.search(r"^## .*?(?=^## )", readme, flags=re.MULTILINE | re.DOTALL)
    assert match, f"{README_TEMPLATE} needs at least two '## ' sections for the upgrade test"
    return match.group()


def make_v1(src: Path) -> str:
    """Turn the copied working tree into the v1 template; return the README section v1 lacks."""
    spec = src / SPEC_TEMPLATE
    spec.write_text(
        replace_once(spec.read_text(encoding="utf-8"), "\nspec_version: 2\n", "\nspec_version: 1\n", SPEC_TEMPLATE),
        encoding="utf-8",
    )
    fragment = src / FRAGMENT
    fragment.write_text(
        replace_once(fragment.read_text(encoding="utf-8"), "\n  direction: maximize\n", "\n  order: desc\n", FRAGMENT),
        encoding="utf-8",
    )
    readme = src / README_TEMPLATE
    text = readme.read_text(encoding="utf-8")
    section = first_section(text)
    readme.write_text(text.replace(section, "", 1), encoding="utf-8")
    return section


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A template repository tagged v1.0.0 (old spec format, shorter README) and v2.0.0 (the working tree)."""
    src = tmp_path_factory.mktemp("history") / "template"
    src.mkdir()
    copy_working_tree(src)
    section = make_v1(src)
    init_repo(src)
    commit_all(src, "v1: spec format 1", "v1.0.0")
    for name in (SPEC_TEMPLATE, FRAGMENT, README_TEMPLATE):
        (src / name).write_text((REPO / name).read_text(encoding="utf-8"), encoding="utf-8")
    commit_all(src, "v2: spec format 2, README section", "v2.0.0")
    return src, section


@pytest.fixture
def collab_v1(history: tuple[Path, str], tmp_path: Path) -> Path:
    """A collab rendered at v1 and committed, then edited by its owner and committed again."""
    src, _ = history
    project = tmp_path / "collab"
    copier.run_copy(
        str(src),
        project,
        data={"challenge_type": CHALLENGE_TYPE},
        defaults=True,
        vcs_ref="v1.0.0",
        unsafe=True,
        quiet=True,
    )
    init_repo(project)
    commit_all(project, "collab rendered from template v1")
    spec = project / "challenge.yaml"
    text = spec.read_text(encoding="utf-8")
    # Guard: the history really starts from spec format 1, or nothing below means anything.
    v1 = yaml.safe_load(text)
    assert (v1["spec_version"], v1["scoring"].get("order"), v1["scoring"].get("direction")) == (1, "desc", None)
    assert read_answers(project)["_commit"] == "v1.0.0"
    text, count = re.subn(r"(?m)^  title: .*$", f"  title: {OWNER_TITLE}", text, count=1)
    assert count == 1
    text = replace_once(text, "\nscoring:\n", f"\n{OWNER_COMMENT}\nscoring:\n", "the rendered challenge.yaml")
    spec.write_text(text, encoding="utf-8")
    with (project / "README.md").open("a", encoding="utf-8") as readme:
        readme.write(OWNER_README)
    commit_all(project, "owner's edits")
    return project


def update(project: Path, capfd: pytest.CaptureFixture[str]) -> str:
    """`copier update` to v2.0.0 as a script runs it; return everything it and its migrations printed."""
    capfd.readouterr()
    copier.run_update(project, defaults=True, overwrite=True, unsafe=True, vcs_ref="v2.0.0", quiet=True)
    out, err = capfd.readouterr()
    return out + err


def test_update_keeps_owner_edits_and_migrates_once(
    collab_v1: Path, history: tuple[Path, str], capfd: pytest.CaptureFixture[str]
) -> None:
    project, (_, section) = collab_v1, history
    printed = update(project, capfd)

    # The migration ran once, in the project, and rewrote the spec to format 2.
    assert printed.count(MIGRATED) == 1, printed
    assert "already at spec_version" not in printed, printed
    text = (project / "challenge.yaml").read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    assert spec["spec_version"] == 2
    assert spec["scoring"]["direction"] == "maximize"
    assert "order" not in spec["scoring"] and not re.search(r"(?m)^\s*order:", text)

    # The owner's spec edits survived: the title value and their own comment line.
    assert spec["challenge"]["title"] == OWNER_TITLE
    assert OWNER_COMMENT + "\n" in text
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./schemas/challenge.schema.json"

    # The template's README change arrived, and the owner's own section is still there.
    readme = (project / "README.md").read_text(encoding="utf-8")
    heading = section.splitlines()[0]
    assert heading in readme, f"the v2 README section {heading!r} did not arrive"
    assert OWNER_README in readme
    assert readme.index(heading) < readme.index(OWNER_README)

    # A clean merge: no conflict markers, no rejected hunks, nothing unmerged.
    assert [p.name for p in files_under(project) if p.suffix in {".rej", ".orig"}] == []
    marked = [
        p.relative_to(project).as_posix()
        for p in files_under(project)
        if re.search(r"(?m)^(<{7}|>{7}|={7})( |$)", p.read_text(encoding="utf-8", errors="replace"))
    ]
    assert marked == []
    assert git(project, "diff", "--name-only", "--diff-filter=U") == ""

    assert read_answers(project)["_commit"] == "v2.0.0"
    loaded, problems = check_spec(project)
    assert problems == [], "\n".join(p.render() for p in problems)
    assert loaded is not None and loaded.spec.challenge.title == OWNER_TITLE


def test_second_update_does_not_migrate_again(collab_v1: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert update(collab_v1, capfd).count(MIGRATED) == 1
    commit_all(collab_v1, "update to template v2")
    migrated = (collab_v1 / "challenge.yaml").read_text(encoding="utf-8")

    printed = update(collab_v1, capfd)
    assert "migrated" not in printed, printed
    assert "challenge.yaml: already at spec_version 2" in printed, printed
    assert (collab_v1 / "challenge.yaml").read_text(encoding="utf-8") == migrated
    assert git(collab_v1, "status", "--porcelain") == ""
