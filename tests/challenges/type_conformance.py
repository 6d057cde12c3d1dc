"""The conformance suite every challenge type passes, on a CPU, written once for any type.

`ConformanceSuite` holds the checks; a test module subclasses it and supplies the `ctype` fixture
(test_conformance.py: every registered type; test_scaffold.py: a freshly scaffolded one). The
helpers render a type's Copier fragment with plain Jinja, the way Copier renders the defaults, so
the suite also runs on a type that is not in copier.yml yet.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import pytest
import yaml

from provision.challenge_types import ChallengeType, CheckResult
from provision.challenge_types.contract import HARNESS_DATA, unresolved_references
from provision.paths import schemas_dir
from provision.plan.desired import IGNORED_SOURCES
from provision.plan.seed import type_harness_files
from provision.spec import ChallengeSpec, check_spec

REPO = Path(__file__).resolve().parents[2]
JOB_SUMMARY_SCHEMA = "job-summary.schema.json"
MODES = ("manual", "eval-space", "jobs")
HARNESS_TIMEOUT_S = 120
VERDICTS = {"valid": "valid", "invalid": "invalid", "pending": None}

# ---------------------------------------------------------------- Copier defaults, with plain Jinja


def jinja_env(ctype: ChallengeType) -> jinja2.Environment:
    """Jinja that finds `challenge_<name>/copier/spec.jinja` and template/ as Copier does."""
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(ctype.package_dir.parent), jinja2.FileSystemLoader(REPO)])
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701  # YAML, not HTML


def fragment(ctype: ChallengeType) -> Any:
    """The type's Copier fragment as a Jinja module: its variables and macros."""
    return jinja_env(ctype).get_template(f"{ctype.package}/copier/spec.jinja").module


def _cast(kind: str, text: str) -> Any:
    if kind == "bool":
        value = yaml.safe_load(text.lower())
        assert isinstance(value, bool), f"a bool question's default rendered to {text!r}"
        return value
    if kind == "int":
        return int(text)
    return text


def default_answers(ctype: ChallengeType, **overrides: Any) -> dict[str, Any]:
    """copier.yml's answers with every question left at its default, for `ctype`."""
    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    env = jinja_env(ctype)
    answers: dict[str, Any] = {"challenge_type": ctype.name, **overrides}
    for key, question in config.items():
        if key.startswith("_") or key in answers:
            continue
        default = question.get("default")
        if isinstance(default, str):
            answers[key] = _cast(question.get("type", "str"), env.from_string(default).render(answers).strip())
        else:
            answers[key] = default
    return answers


def render_spec(ctype: ChallengeType, folder: Path, **overrides: Any) -> Path:
    """Write the challenge.yaml that template/challenge.yaml.jinja renders for these answers."""
    text = jinja_env(ctype).get_template("template/challenge.yaml.jinja").render(default_answers(ctype, **overrides))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "challenge.yaml").write_text(text, encoding="utf-8")
    return folder / "challenge.yaml"


# Every verification mode with jobs on and off, except verification by jobs without jobs.
COMBOS = [
    {"jobs_enabled": jobs, "verification_mode": mode}
    for jobs in (True, False)
    for mode in MODES
    if jobs or mode != "jobs"
]


# ---------------------------------------------------------------- examples and the harness


def read_result(path: Path) -> tuple[dict[str, Any], str]:
    """Split a result file into its YAML frontmatter and its Markdown body."""
    text = path.read_text(encoding="utf-8")
    head, sep, body = text.removeprefix("---\n").partition("\n---\n")
    assert text.startswith("---\n") and sep, f"{path}: a result starts with '---', its frontmatter, and '---'"
    frontmatter = yaml.safe_load(head)
    assert isinstance(frontmatter, dict), f"{path}: the frontmatter must be a mapping"
    return frontmatter, body


def submissions(ctype: ChallengeType, kind: str) -> list[Path]:
    """The example submission folders under examples/<kind>/; there must be at least one."""
    found = sorted(p for p in (ctype.examples_dir / kind).glob("*") if p.is_dir())
    assert found, f"{ctype.package}/{ctype.examples}/{kind}/ needs at least one example submission folder"
    return found


def result_examples(ctype: ChallengeType) -> list[tuple[str, Path]]:
    """The example result files, each with the verdict folder it sits in: an invalid one and a valid or pending one."""
    root = ctype.examples_dir / "results"
    found = [(kind, path) for kind in VERDICTS for path in sorted((root / kind).glob("*.md"))]
    kinds = {kind for kind, _ in found}
    assert "invalid" in kinds and kinds & {"valid", "pending"}, (
        f"{ctype.package}/{ctype.examples}/results/ needs an invalid/*.md result and a valid/ or pending/ one"
    )
    return found


def seeded_harness(ctype: ChallengeType, folder: Path) -> Path:
    """The harness as a job receives it, copied into `folder`: what provisioning seeds, nothing else.

    That is the harness folder and, when the type declares `harness_data`, its data as `data/`
    beside `run.py`. A harness that reads any other file of the package works in a checkout and
    fails in a job; run from this copy, it fails here.
    """
    prefix = "harness/"
    for path, local in type_harness_files(ctype, prefix, IGNORED_SOURCES).items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local.source, target)
    return folder / prefix


def summary_validators(ctype: ChallengeType) -> list[Any]:
    """Validators for summary.json: the kit's job summary schema, then the type's own, through the contract.

    The type's schema may `$ref` the kit's, or one of its own `schemas/`, by `$id`; the contract
    resolves those references from the local files only.
    """
    generic = schemas_dir() / JOB_SUMMARY_SCHEMA
    assert generic.is_file(), (
        f"schemas/{JOB_SUMMARY_SCHEMA} does not exist: it is the kit's one definition of summary.json, "
        "and every harness's output is checked against it"
    )
    kit = json.loads(generic.read_text(encoding="utf-8"))
    registry = ctype.schema_registry()  # local files only: nothing is fetched
    return [jsonschema.validators.validator_for(kit)(kit, registry=registry), ctype.summary_validator()]


def run_harness(
    ctype: ChallengeType, harness: Path, submission: Path, work: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Run the harness as a job does, on a copy of the submission, with the type's CPU arguments."""
    mounted = work / "submission"
    shutil.copytree(submission, mounted, symlinks=True)
    state = work / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-s", str(harness / "run.py"), "--submission-dir", str(mounted)]
    command += ["--state-dir", str(state), *ctype.cpu_args, *extra]
    done = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, check=False, timeout=HARNESS_TIMEOUT_S
    )
    path = state / "summary.json"
    return done, json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def schema_errors(validators: list[Any], summary: Mapping[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for v in validators for e in v.iter_errors(summary)
    ]


# Frontmatter a participant could write, none of which may make a cheap check raise or say "valid".
GARBAGE: list[Any] = [
    {},
    {"title": "no score at all"},
    {"tour_length": "12", "tps": "fast", "tour": "0 1 2", "ppl": "low"},
    {"tour_length": True, "tps": True, "tour": [True, False], "ppl": False},
    {"tour_length": math.nan, "tps": math.inf, "ppl": -math.inf},
    {"tour_length": None, "tps": None, "tour": None, "method": None, "track": None},
    {"tour_length": 1, "tps": 1, "tour": list(range(200_000)), "method": "x", "track": "lossless", "ppl": 2.0},
    {"tour_length": 1, "tps": 1, "tour": {"0": 1}, "method": ["x"], "track": {"lossless": 1}, "ppl": [2]},
    {"tour_length": -1, "tps": -1, "tour": [-1] * 10, "method": "\x1b[2J", "track": "../../etc", "ppl": 0.5},
    {"tour_length": 10**400, "tps": 10**400, "tour": [10**400], "method": "x" * 100_000, "ppl": 10**400},
]


class ConformanceSuite:
    """The checks; subclasses provide the `ctype` fixture (class-scoped)."""

    # ------------------------------------------------------------ fixtures

    @pytest.fixture(scope="class")
    @classmethod
    def spec(cls, ctype: ChallengeType, tmp_path_factory: pytest.TempPathFactory) -> ChallengeSpec:
        """The spec a collab of this type starts with, all answers at their defaults."""
        path = render_spec(ctype, tmp_path_factory.mktemp(f"{ctype.name}-spec"))
        loaded, problems = check_spec(path)
        assert loaded is not None, "\n".join(p.render() for p in problems)
        return loaded.spec

    @pytest.fixture(scope="class")
    @classmethod
    def harness(cls, ctype: ChallengeType, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The harness as the central bucket is seeded with it (its data beside it), copied out of the package."""
        assert ctype.entrypoint.is_file(), f"{ctype.package}/{ctype.harness}/run.py is missing: the job entrypoint"
        return seeded_harness(ctype, tmp_path_factory.mktemp(f"{ctype.name}-seeded"))

    @pytest.fixture(scope="class")
    @classmethod
    def validators(cls, ctype: ChallengeType) -> list[Any]:
        return summary_validators(ctype)

    # ------------------------------------------------------------ declaration and Copier fragment

    def test_declaration_is_sound(self, ctype: ChallengeType) -> None:
        assert ctype.package_dir.name == ctype.package
        assert (ctype.package_dir / "__init__.py").is_file()
        for path in (ctype.harness_dir, ctype.examples_dir):
            assert path.is_dir(), f"{path.relative_to(ctype.package_dir.parent)}/ is missing"
        for path in (ctype.summary_schema_path, ctype.task_path, ctype.copier_fragment):
            assert path.is_file(), f"{path.relative_to(ctype.package_dir.parent)} is missing"

    def test_harness_data_is_a_folder_of_files(self, ctype: ChallengeType) -> None:
        """A declared `harness_data` holds files, and the harness folder has no `data` of its own to clash with it."""
        data = ctype.harness_data_dir
        if data is None:
            return
        where = f"{ctype.package}/{ctype.harness_data}"
        assert data.is_dir(), f"{where}/ is missing: harness_data names the folder uploaded beside run.py as data/"
        assert any(p.is_file() for p in data.rglob("*")), f"{where}/ holds no file: drop harness_data, or fill it"
        clash = ctype.harness_dir / HARNESS_DATA
        assert not clash.exists(), (
            f"{ctype.package}/{ctype.harness}/{HARNESS_DATA} and {where}/ would both be seeded as {HARNESS_DATA}/"
        )

    def test_seeded_harness_is_what_the_package_declares(self, ctype: ChallengeType, harness: Path) -> None:
        """The harness the suite runs is the one provisioning seeds: run.py, and the data beside it when declared."""
        assert (harness / "run.py").is_file()
        seeded = harness / HARNESS_DATA
        if ctype.harness_data_dir is None:
            return
        declared = {
            p.relative_to(ctype.harness_data_dir).as_posix()
            for p in ctype.harness_data_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert {p.relative_to(seeded).as_posix() for p in seeded.rglob("*") if p.is_file()} == declared

    def test_denylist_is_seeded_and_reads_as_standing_rules(self, ctype: ChallengeType, harness: Path) -> None:
        """A declared denylist lies in the seeded harness, and every entry is a rule the backend can apply."""
        if ctype.denylist is None:
            return
        from collab_backend.services.denylist import parse  # the backend's reading of it

        where = f"{ctype.package}/{ctype.harness}/{ctype.denylist}"
        seeded = harness / ctype.denylist
        assert seeded.is_file(), f"{where} is missing from the seeded harness"
        rules, problems = parse(json.loads(seeded.read_text(encoding="utf-8")))
        assert problems == [] and rules, f"{where}: {problems[:3] or 'no rules'}"

    def test_fragment_sets_every_default(self, ctype: ChallengeType) -> None:
        t = fragment(ctype)
        assert t.title == ctype.title, "the fragment's title and ChallengeType.title must be the same"
        assert isinstance(t.tagline, str) and 0 < len(t.tagline) <= 200
        assert isinstance(t.jobs_default, bool)
        assert t.verification_default in MODES
        assert t.jobs_default or t.verification_default != "jobs", "verification by jobs needs jobs on by default"
        for key in ("jobs_timeout_minutes", "per_agent_default", "per_user_default"):
            value = getattr(t, key)
            assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, f"{key} = {value!r}"
        scoring = yaml.safe_load(str(t.scoring()))
        assert list(scoring) == ["scoring"], "scoring() renders the whole `scoring:` section, nothing else"
        extra = yaml.safe_load(str(t.verification_extra())) or {}
        assert isinstance(extra, dict) and "mode" not in extra, "verification_extra() adds keys; the answer sets mode"

    @pytest.mark.parametrize(
        "answers", COMBOS, ids=lambda a: f"{a['verification_mode']}-jobs_{'on' if a['jobs_enabled'] else 'off'}"
    )
    def test_fragment_renders_valid_specs(self, ctype: ChallengeType, tmp_path: Path, answers: dict[str, Any]) -> None:
        loaded, problems = check_spec(render_spec(ctype, tmp_path, **answers))
        assert problems == [], "\n".join(p.render() for p in problems)
        assert loaded is not None and loaded.spec.challenge.type == ctype.name

    def test_summary_schema_declares_the_scored_fields(self, ctype: ChallengeType, spec: ChallengeSpec) -> None:
        properties = ctype.load_summary_schema().get("properties", {})
        fields = (
            [spec.scoring.score_field]
            + [m.field for m in spec.scoring.metrics]
            + [g.field for g in spec.verification.guards]
        )
        for field in fields:
            node = properties.get(field, {})
            kinds = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
            numeric = {"number", "integer"} & set(kinds) or (
                node.get("enum") and all(isinstance(v, int | float) and not isinstance(v, bool) for v in node["enum"])
            )
            assert numeric, f"summary schema: `{field}` (scored or guarded) must be a number property"

    def test_own_schemas_are_sound_and_resolve_offline(self, ctype: ChallengeType) -> None:
        """Each schema in the type's schemas/ is valid, has an $id, and its references resolve locally."""
        registry = ctype.schema_registry()  # refuses a missing or repeated $id
        for path in sorted(ctype.schemas_dir.glob("*")):
            where = path.relative_to(ctype.package_dir.parent)
            assert path.name.endswith(".schema.json"), f"{where}: a schema file is named NAME.schema.json"
            schema = json.loads(path.read_text(encoding="utf-8"))
            jsonschema.validators.validator_for(schema).check_schema(schema)
            assert unresolved_references(schema, registry) == [], where

    # ------------------------------------------------------------ the harness on the examples

    def test_examples_exist(self, ctype: ChallengeType) -> None:
        assert submissions(ctype, "valid") and submissions(ctype, "invalid") and result_examples(ctype)

    def test_harness_scores_valid_examples(
        self, ctype: ChallengeType, harness: Path, validators: list[Any], spec: ChallengeSpec, tmp_path: Path
    ) -> None:
        for submission in submissions(ctype, "valid"):
            work = tmp_path / submission.name
            done, summary = run_harness(ctype, harness, submission, work)
            assert done.returncode == 0, f"{submission.name}: exit {done.returncode}\n{done.stdout}{done.stderr}"
            assert summary is not None, f"{submission.name}: no summary.json\n{done.stdout}{done.stderr}"
            assert schema_errors(validators, summary) == [], submission.name
            assert summary["valid"] is True, f"{submission.name}: {summary.get('reasons')}"
            score = summary.get(spec.scoring.score_field)
            assert isinstance(score, int | float) and math.isfinite(score), f"{submission.name}: no score in {summary}"

    def test_harness_refuses_invalid_examples(
        self, ctype: ChallengeType, harness: Path, validators: list[Any], tmp_path: Path
    ) -> None:
        for submission in submissions(ctype, "invalid"):
            done, summary = run_harness(ctype, harness, submission, tmp_path / submission.name)
            assert done.returncode == 0, f"{submission.name}: exit {done.returncode}\n{done.stdout}{done.stderr}"
            assert summary is not None, f"{submission.name}: an invalid submission still gets a summary.json"
            assert schema_errors(validators, summary) == [], submission.name
            assert summary["valid"] is False, f"{submission.name} was scored as valid"
            assert summary["reasons"] and all(isinstance(r, str) and r for r in summary["reasons"])
            assert "Traceback" not in done.stdout + done.stderr

    def test_harness_refuses_a_missing_submission_folder(
        self, ctype: ChallengeType, harness: Path, validators: list[Any], tmp_path: Path
    ) -> None:
        """Either refused as a launch failure (non-zero, no summary) or scored invalid; never a crash."""
        state = tmp_path / "state"
        command = [sys.executable, str(harness / "run.py"), "--submission-dir", str(tmp_path / "nowhere")]
        command += ["--state-dir", str(state), *ctype.cpu_args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=HARNESS_TIMEOUT_S)
        assert "Traceback" not in done.stderr, done.stderr
        written = state / "summary.json"
        if done.returncode != 0:
            assert not written.exists(), "a run that exits non-zero leaves no summary.json"
            return
        summary = json.loads(written.read_text(encoding="utf-8"))
        assert schema_errors(validators, summary) == []
        assert summary["valid"] is False and summary["reasons"]

    # ------------------------------------------------------------ cheap check and task section

    def test_cheap_check_gives_the_expected_verdicts(self, ctype: ChallengeType, spec: ChallengeSpec) -> None:
        for expected, path in result_examples(ctype):
            frontmatter, body = read_result(path)
            result = ctype.cheap_check(path.name, frontmatter, body, spec)
            assert isinstance(result, CheckResult), f"{path.name}: cheap_check returned {result!r}"
            assert result.verdict == VERDICTS[expected], f"{path.name}: {result.verdict} ({result.reason})"

    @pytest.mark.parametrize("index", range(len(GARBAGE)))
    def test_cheap_check_never_raises_nor_accepts_garbage(
        self, ctype: ChallengeType, spec: ChallengeSpec, index: int
    ) -> None:
        result = ctype.cheap_check("../../result.md", GARBAGE[index], "\x00" * 10, spec)
        assert isinstance(result, CheckResult)
        assert result.verdict != "valid", result.reason

    def test_task_section(self, ctype: ChallengeType, spec: ChallengeSpec) -> None:
        text = ctype.task_section(spec)
        assert text.startswith("## "), "the task section opens with a level-2 heading (the README has the title)"
        assert f"`{spec.scoring.score_field}`" in text or spec.scoring.score_field in text
        assert "${" not in text
