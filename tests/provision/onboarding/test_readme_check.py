"""The onboarding check (`collab check-readme`): clean on the README the seed writes, and each kind of
mistake caught on a README seeded with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from provision.cli import main
from provision.local.target import local_target
from provision.onboarding.check import api_routes, check_readme
from provision.onboarding.readme import VERIFICATION_INDEX
from provision.plan.desired import IGNORED_SOURCES
from provision.plan.seed import README_PATH, desired_seed
from provision.spec import load_spec


@pytest.fixture(scope="module")
def setting(example_spec: Path) -> dict[str, object]:
    loaded = load_spec(example_spec)
    seed = desired_seed(loaded, IGNORED_SOURCES)
    return {
        "readme": seed.readme,
        "local": local_target(example_spec.parent).desired.seed.readme,  # type: ignore[union-attr]
        "routes": api_routes(example_spec.parent / "backend"),
        "files": [README_PATH, VERIFICATION_INDEX, *seed.harness],
        "required_fields": loaded.spec.scoring.required_fields,
        "score_field": loaded.spec.scoring.score_field,
    }


def problems(setting: dict[str, object], text: str) -> list[str]:
    args = {k: v for k, v in setting.items() if k not in ("readme", "local")}
    return [f"{p.kind}: {p.message}" for p in check_readme(text, **args)]  # type: ignore[arg-type]


def test_the_api_is_read_from_the_routes(setting: dict[str, object]) -> None:
    routes = setting["routes"]
    assert {("GET", "/v1"), ("POST", "/v1/messages/promote"), ("GET", "/v1/digest/{agent_id}")} <= routes  # type: ignore[operator]


@pytest.mark.parametrize("flavour", ["readme", "local"])
def test_the_generated_readmes_are_clean(setting: dict[str, object], flavour: str) -> None:
    assert problems(setting, str(setting[flavour])) == []


EDITS: list[tuple[str, Callable[[str], str], str]] = [
    ("broken-link", lambda t: t + "\nSee [the rules](harness/RULES.md).\n", "link: harness/RULES.md is not a file"),
    ("dead-anchor", lambda t: t + "\nSee [below](#prizes).\n", "link: #prizes is no heading"),
    ("json", lambda t: t.replace('"format": "gemma-submission",', '"format": "gemma-submission"'),
     "parse: not valid json"),
    ("bash", lambda t: t.replace('hf buckets create "', 'hf buckets create $( "', 1), "parse: bash cannot parse it"),
    ("frontmatter", lambda t: t.replace("---\nchannel: general\n", "---\nchannel: [general\n"),
     "parse: not valid markdown"),
    ("no-language", lambda t: t + "\n```\nhf buckets ls\n```\n", "parse: a ```(no language) block"),
    ("curl-endpoint", lambda t: t.replace('/v1/messages/promote" -H', '/v1/messages/copy" -H'),
     "endpoint: the example calls POST /v1/messages/copy, not in the API"),
    ("text-endpoint", lambda t: t + "\nThen `GET /v1/prizes/{id}`.\n",
     "endpoint: GET /v1/prizes/{id} is not in the API"),
    ("wrong-method", lambda t: t.replace("| `GET /v1/leaderboard` |", "| `POST /v1/leaderboard` |"),
     "endpoint: POST /v1/leaderboard is not in the API"),
    ("task-placeholder", lambda t: t + "\nJobs run on ${jobs.flavour}.\n", "placeholder: an unfilled `${...}`"),
    ("jinja", lambda t: t + "\n{{ backend }}\n", "placeholder: an unrendered Jinja expression"),
    ("comment", lambda t: t + "\n<!-- fill in the prizes -->\n", "placeholder: a leftover HTML comment"),
    ("result-field", lambda t: t.replace('\nmethod: "what you ran, in one line"\n', "\n", 1),
     "result-field: the result example lacks method"),
    ("task-result-field", lambda t: t.replace("\ntrack: lossless\nstatus: agent-run", "\nstatus: agent-run"),
     "result-field: the result example lacks track"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "expected"), [(e, m) for _, e, m in EDITS], ids=[i for i, _, _ in EDITS])
def test_each_kind_of_mistake_is_caught(setting: dict[str, object], edit: Callable[[str], str], expected: str) -> None:
    readme = str(setting["readme"])
    bad = edit(readme)
    assert bad != readme, "the edit did not apply: the README's wording changed"
    found = problems(setting, bad)
    assert any(p.startswith(expected) for p in found), found


def test_the_command(example_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    collab = example_spec.parent
    assert main(["check-readme", str(collab)]) == 0
    assert "No problem found in the README the seed writes" in capsys.readouterr().out
    edited = tmp_path / "README.md"
    edited.write_text(desired_seed(load_spec(example_spec), IGNORED_SOURCES).readme + "\n<!-- todo -->\n", "utf-8")
    assert main(["check-readme", str(collab), "--file", str(edited)]) == 1
    out = capsys.readouterr().out
    assert f"{edited}: line " in out and "leftover HTML comment" in out and "1 problem(s)" in out
