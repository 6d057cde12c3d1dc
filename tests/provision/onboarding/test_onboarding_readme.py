"""The onboarding README is the recorded text, byte for byte, for specs that reach every branch of it.

`cases/` holds specs with the values the README escapes or spells out in unusual ways (Markdown
and HTML specials, absolute and no noise, quota overrides, guards with both bounds, no tracks,
no tagline) beside the README each one gets; the render matrix checks the READMEs of the collabs
it renders against `matrix/` the same way. Rerun with `--update-goldens` after an intended change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from provision.challenge_types import load_type
from provision.onboarding.readme import render_readme
from provision.spec import load_spec

CASES = Path(__file__).parent / "cases"


def onboarding_readme(spec_path: Path) -> str:
    """The README the seed generates for a spec: the spec's values plus its type's task section."""
    spec = load_spec(spec_path).spec
    return render_readme(spec, load_type(spec.challenge.type).task_section(spec))


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.yaml")))
def test_readme_is_the_recorded_one(case: str, golden: Callable[[Path, str], None]) -> None:
    golden(CASES / f"{case}.md", onboarding_readme(CASES / f"{case}.yaml"))


def test_every_case_has_its_readme() -> None:
    assert sorted(p.stem for p in CASES.glob("*.md")) == sorted(p.stem for p in CASES.glob("*.yaml")) != []
