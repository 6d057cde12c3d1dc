"""docs/challenge-types.md documents every hook of the contract, so the page cannot fall behind."""

from __future__ import annotations

import re
from dataclasses import fields

from type_conformance import REPO

from provision.challenge_types import ChallengeType

PAGE = REPO / "docs" / "challenge-types.md"
# The names the kit calls besides the declared fields: derived paths and rendering.
CALLED = [
    "harness_dir",
    "harness_data_dir",
    "entrypoint",
    "examples_dir",
    "copier_fragment",
    "task_section",
    "schemas_dir",
    "summary_validator",
]


def _hook_headings() -> str:
    return "\n".join(re.findall(r"^### .*$", PAGE.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_every_hook_has_a_heading() -> None:
    headings = _hook_headings()
    for name in [f.name for f in fields(ChallengeType)] + CALLED:
        assert f"`{name}" in headings, f"docs/challenge-types.md has no `### ` heading for `{name}`"


def test_called_names_exist() -> None:
    for name in CALLED:
        assert hasattr(ChallengeType, name), f"{name} is documented as a hook but ChallengeType has no such member"


def test_the_fragment_table_lists_what_the_suite_requires() -> None:
    text = PAGE.read_text(encoding="utf-8")
    template = (REPO / "template" / "challenge.yaml.jinja").read_text(encoding="utf-8")
    questions = (REPO / "copier.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\bt\.([a-z_]+)", template + questions))
    assert used, "copier.yml and template/challenge.yaml.jinja no longer import the fragment as `t`"
    for name in used:
        assert f"`{name}" in text, f"the fragment's `{name}` is used by the template but not documented"
