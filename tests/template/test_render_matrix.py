"""Every challenge type x verification mode x jobs on/off renders a collab that checks itself.

Each combination is rendered once (module-scoped fixture) from the session's clone of the working
tree; the checks below then read that one render. The rendered collab's own test suite and ruff
run last for each combination.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import pytest
import yaml
from template_harness import (
    HEAD_TAG,
    REPO,
    commit_all,
    copy_working_tree,
    files_under,
    init_repo,
    read_answers,
    render,
)

from collab_testing.types import any_type
from provision.challenge_types import load_type, registered
from provision.onboarding.readme import render_readme
from provision.spec import check_spec, load_spec

MODELINE = "# yaml-language-server: $schema=./schemas/challenge.schema.json"
READMES = REPO / "tests" / "provision" / "onboarding" / "matrix"
TYPES = sorted(registered())
MODES = ("manual", "eval-space", "jobs")


class Combo(NamedTuple):
    challenge_type: str
    mode: str
    jobs: bool

    @property
    def id(self) -> str:
        return f"{self.challenge_type}-{self.mode}-jobs_{'on' if self.jobs else 'off'}"

    @property
    def data(self) -> dict[str, Any]:
        return {"challenge_type": self.challenge_type, "verification_mode": self.mode, "jobs_enabled": self.jobs}


COMBOS = [Combo(t, m, j) for t in TYPES for m in MODES for j in (True, False)]
REFUSED = [c for c in COMBOS if c.mode == "jobs" and not c.jobs]
RENDERED = [c for c in COMBOS if c not in REFUSED]


def copier_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    return config


def choice_values(question: dict[str, Any]) -> set[str]:
    """The values of a Copier question's choices, in any of the forms Copier accepts."""
    choices = question["choices"]
    if isinstance(choices, list):
        return {c[1] if isinstance(c, list) else c for c in choices}
    return {v["value"] if isinstance(v, dict) else v for v in choices.values()}


# ---------------------------------------------------------------- the set of challenge types


def test_challenge_type_choices_are_the_registered_types() -> None:
    assert TYPES, "no challenge type registered: is the repository pip-installed (`pip install -e .`)?"
    assert choice_values(copier_config()["challenge_type"]) == set(TYPES)


def test_verification_mode_choices_are_the_matrix_modes() -> None:
    assert choice_values(copier_config()["verification_mode"]) == set(MODES)


@pytest.mark.parametrize("challenge_type", TYPES)
def test_each_type_is_wired_into_the_template(challenge_type: str) -> None:
    package = f"challenge_{challenge_type}"
    link = REPO / "template" / package
    assert link.is_symlink(), f"template/{package} must be a symlink to ../{package}"
    assert link.resolve() == (REPO / package).resolve()
    assert (REPO / package / "copier" / "spec.jinja").is_file(), f"{package}/copier/spec.jinja is missing"


def test_other_types_stay_out_of_the_collab(tmp_path: Path) -> None:
    """Only the chosen type's package is copied, even when the template carries others."""
    src = tmp_path / "template"
    copy_working_tree(src)
    other = src / "challenge_zz_other"
    (other / "copier").mkdir(parents=True)
    (other / "__init__.py").write_text('"""Another challenge type."""\n', encoding="utf-8")
    (other / "copier" / "spec.jinja").write_text("{# fragment #}\n", encoding="utf-8")
    (src / "template" / "challenge_zz_other").symlink_to("../challenge_zz_other")
    init_repo(src)
    commit_all(src, "with a second type", HEAD_TAG)
    collab = render(src, tmp_path / "collab", {"challenge_type": TYPES[0]})
    assert sorted(p.name for p in collab.glob("challenge_*")) == [f"challenge_{TYPES[0]}"]


# ---------------------------------------------------------------- refused combination


@pytest.mark.parametrize("combo", REFUSED, ids=lambda c: c.id)
def test_jobs_verification_without_jobs_is_refused(combo: Combo, template_src: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^Invalid choice for 'verification_mode': ") as refused:
        render(template_src, tmp_path / "collab", combo.data)
    message = str(refused.value)
    assert "needs jobs_enabled" in message
    assert "choose manual or eval-space" in message
    assert "\n" not in message and "{" not in message, message
    assert not (tmp_path / "collab").exists(), "a refused render must not leave a half-written collab"


# ---------------------------------------------------------------- each rendered combination


# The backend's and the dashboard's tests do not depend on the answers, and this suite runs them itself
# with the first registered type (`any_type`). So, in its own environment (where only its type is
# registered), a collab of each other type runs its whole suite and the demo; a collab of that first
# type runs its own checks and the demo; the other combinations run the collab's own spec checks
# (which do depend on the answers).
DEMOED = {next(c for c in RENDERED if c.challenge_type == t) for t in TYPES}
FULL_SUITE = {c for c in DEMOED if c.challenge_type != any_type()}


# A whole suite in a fresh environment runs for minutes: its combination's tests are scheduled first
# (the `slow` marker, tests/conftest.py), so a parallel run does not end waiting for it.
@pytest.fixture(
    scope="module",
    params=[pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c in FULL_SUITE else []) for c in RENDERED],
)
def rendered(request: pytest.FixtureRequest, template_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    combo: Combo = request.param
    collab = render(template_src, tmp_path_factory.mktemp(combo.id) / "collab", combo.data)
    return combo, collab


def test_spec_names_its_schema_on_line_one(rendered: tuple[Combo, Path]) -> None:
    _, collab = rendered
    assert (collab / "challenge.yaml").read_text(encoding="utf-8").splitlines()[0] == MODELINE


def test_spec_is_valid_and_matches_the_answers(rendered: tuple[Combo, Path]) -> None:
    combo, collab = rendered
    loaded, problems = check_spec(collab)
    assert problems == [], "\n".join(p.render() for p in problems)
    assert loaded is not None
    assert loaded.spec.challenge.type == combo.challenge_type
    assert loaded.spec.verification.mode == combo.mode
    assert loaded.spec.jobs.enabled is combo.jobs
    raw = yaml.safe_load((collab / "challenge.yaml").read_text(encoding="utf-8"))
    assert ("quota" in raw["jobs"]) is combo.jobs, "the quota is written only when jobs are on"


def test_answers_file_records_source_and_answers(rendered: tuple[Combo, Path], template_src: Path) -> None:
    combo, collab = rendered
    answers = read_answers(collab)
    assert answers["_commit"] == HEAD_TAG
    assert Path(answers["_src_path"]) == template_src
    assert answers["challenge_type"] == combo.challenge_type
    assert answers["verification_mode"] == combo.mode
    assert answers["jobs_enabled"] is combo.jobs
    quota_keys = {"jobs_per_agent_per_day", "jobs_per_user_per_day"}
    assert quota_keys & answers.keys() == (quota_keys if combo.jobs else set()), "quotas are asked only with jobs"


def rendered_from_templates() -> list[str]:
    """Collab paths that Copier rendered from `.jinja` sources (copied files may hold `{{` legitimately)."""
    out = []
    for source in (REPO / "template").rglob("*.jinja"):
        relative = source.relative_to(REPO / "template").as_posix().removesuffix(".jinja")
        out.append(".copier-answers.yml" if "_copier_conf.answers_file" in relative else relative)
    return out


def test_onboarding_readme_is_the_recorded_one(
    rendered: tuple[Combo, Path], golden: Callable[[Path, str], None]
) -> None:
    combo, collab = rendered
    spec = load_spec(collab / "challenge.yaml").spec
    golden(READMES / f"{combo.id}.md", render_readme(spec, load_type(spec.challenge.type).task_section(spec)))


def test_every_recorded_readme_is_a_rendered_combination() -> None:
    assert sorted(p.stem for p in READMES.glob("*.md")) == sorted(c.id for c in RENDERED)


def test_no_template_syntax_left(rendered: tuple[Combo, Path]) -> None:
    _, collab = rendered
    leftovers = []
    targets = rendered_from_templates()
    assert "challenge.yaml" in targets and ".copier-answers.yml" in targets
    for relative in targets:
        if relative.startswith("eval/") and not (collab / "eval").is_dir():
            continue  # only a collab verifying in an eval Space has eval/ (test_the_eval_service_comes_only_...)
        text = (collab / relative).read_text(encoding="utf-8")
        leftovers += [f"{relative}: {m.group()!r}" for m in re.finditer(r"\{\{|\{%|\{#", text)]
    assert leftovers == []


def test_structured_files_parse(rendered: tuple[Combo, Path]) -> None:
    _, collab = rendered
    checked = []
    for path in files_under(collab):
        if "examples/invalid" in path.as_posix():  # malformed on purpose: the harness must refuse them
            continue
        text = path.read_text(encoding="utf-8") if path.suffix in {".yaml", ".yml", ".toml", ".json"} else None
        if text is None:
            continue
        if path.suffix in {".yaml", ".yml"}:
            list(yaml.safe_load_all(text))
        elif path.suffix == ".toml":
            tomllib.loads(text)
        else:
            json.loads(text)
        checked.append(path.relative_to(collab).as_posix())
    assert {"challenge.yaml", ".copier-answers.yml", "pyproject.toml", "schemas/challenge.schema.json"} <= set(checked)


def test_schemas_are_copied_and_valid(rendered: tuple[Combo, Path]) -> None:
    """The kit's schemas, and the chosen type's own (challenge_<type>/schemas/, where it has them)."""
    combo, collab = rendered
    schemas = sorted((collab / "schemas").glob("*.json"))
    assert [p.name for p in schemas] == sorted(p.name for p in (REPO / "schemas").glob("*.json"))
    package = f"challenge_{combo.challenge_type}"
    own = sorted((collab / package / "schemas").glob("*.json"))
    assert [p.name for p in own] == sorted(p.name for p in (REPO / package / "schemas").glob("*.json"))
    for path in schemas + own:
        assert not path.is_symlink(), f"{path.name} must be a file in the collab, not a link into the template"
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validators.validator_for(schema).check_schema(schema)


def test_only_the_chosen_type_is_packaged(rendered: tuple[Combo, Path]) -> None:
    combo, collab = rendered
    package = f"challenge_{combo.challenge_type}"
    assert sorted(p.name for p in collab.glob("challenge_*")) == [package]
    assert (collab / package / "__init__.py").is_file()
    assert [p for p in collab.rglob("copier") if p.is_dir()] == [], "Copier fragment folders must not be copied"


def test_the_eval_service_comes_only_with_mode_eval_space(rendered: tuple[Combo, Path]) -> None:
    combo, collab = rendered
    assert (collab / "eval" / "collab_eval" / "main.py").is_file() == (combo.mode == "eval-space")


def test_no_bytecode_or_caches(rendered: tuple[Combo, Path]) -> None:
    _, collab = rendered
    junk = [p for p in collab.rglob("*") if p.name == "__pycache__" or p.suffix in {".pyc", ".pyo"}]
    assert junk == []
    assert not any(p.is_symlink() for p in collab.rglob("*")), "symlinks in the template must be followed"


def _env(python: Path | None = None) -> dict[str, str]:
    """This environment less the kit's own settings; with `python`, its environment's commands come first."""
    # The dashboard's Chromium tests run once, in the kit's own suite; here they stay opt-in (skipped).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "COLLAB_BROWSER_TESTS"}
    env = {k: v for k, v in env.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if python is not None:
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(
    collab: Path, *command: str, timeout: float = 300, python: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=collab, env=_env(python), capture_output=True, text=True, check=False, timeout=timeout
    )


# ---------------------------------------------------------------- each collab in an environment of its own


def install_arguments() -> list[str]:
    """What SETUP.md step 6 tells the organizer to install, after `pip install`; Copier prints the same."""
    setup = (REPO / "SETUP.md").read_text(encoding="utf-8").split("\n## 6.")[1].split("\n## ")[0]
    [line] = [x for x in setup.splitlines() if x.startswith("$ pip install -e ")]
    printed = copier_config()["_message_after_copy"]
    assert line[2:] in [x.strip() for x in printed.splitlines()], f"Copier prints another install than SETUP's {line!r}"
    return shlex.split(line[2:])[2:]


def own_environment(collab: Path) -> Path:
    """A fresh virtual environment beside the collab, installed as SETUP.md says; returns its python.

    uv installs the same requirements as pip, from the same registry, faster (its wheel cache is
    shared between runs); where uv is missing, pip does it.
    """
    venv = collab.parent / "venv"
    python = venv / "bin" / "python"
    uv = shutil.which("uv")
    if uv:
        steps = [[uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                 [uv, "pip", "install", "--quiet", "--python", str(python), *install_arguments()]]  # fmt: skip
    else:
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "--quiet", *install_arguments()]]  # fmt: skip
    for step in steps:
        done = _run(collab, *step, timeout=600)
        assert done.returncode == 0, f"{' '.join(step)}:\n{done.stdout}{done.stderr}"
    return python


def passes_its_tests(collab: Path, python: Path, *selection: str) -> None:
    command = (str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection)
    done = _run(collab, *command, timeout=900, python=python)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"\b\d+ passed\b", output), output
    assert "no tests ran" not in output and " error" not in output.splitlines()[-1], output


def passes_its_demo(collab: Path, python: Path) -> str:
    """`python -m provision.demo` until its script is done, then Ctrl-C; every step must pass."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = subprocess.Popen(
        [str(python), "-m", "provision.demo", "--seconds", "240", "--port", str(port), "--pause", "0"],
        cwd=collab, env=_env(python), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("The script is done"):
                demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    out = "".join(lines)
    assert code == 0, out
    assert "The script is done" in out and "FAILED" not in out and "no process left." in out, out
    return out


def test_collab_own_tests_pass(rendered: tuple[Combo, Path]) -> None:
    """In a fresh environment installed as SETUP.md says, not the kit's: the collab registers its own type only."""
    combo, collab = rendered
    python = own_environment(collab)
    passes_its_tests(collab, python, *([] if combo in FULL_SUITE else ["tests"]))
    if combo not in DEMOED:
        return
    out = passes_its_demo(collab, python)
    words = load_type(combo.challenge_type).demo
    assert f"opened channel #{words.channel}: {words.about}" in out, out
    for other in set(TYPES) - {combo.challenge_type}:
        assert f"#{load_type(other).demo.channel}" not in out, f"the {other} type's channel in this demo"


NEW_TYPE = "knap"


@pytest.fixture(scope="module")
def new_type_collab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collab of a type `collab new-type` just wrote into a copy of the template, wired as the command says."""
    src = tmp_path_factory.mktemp("new-type") / "template"
    copy_working_tree(src)
    made = _run(src, sys.executable, "-m", "provision.cli", "new-type", NEW_TYPE, "--dest", str(src))
    assert made.returncode == 0, made.stdout + made.stderr
    # The printed steps 2 and 3 (step 1 registers the type in the kit's own environment, not needed to render).
    config = src / "copier.yml"
    text = config.read_text(encoding="utf-8")
    head, choices, rest = text.partition("challenge_type:\n  type: str\n")
    rest = rest.replace("  choices:\n", f'  choices:\n    "{NEW_TYPE}: a new type": {NEW_TYPE}\n', 1)
    config.write_text(head + choices + rest, encoding="utf-8")
    (src / "template" / f"challenge_{NEW_TYPE}").symlink_to(f"../challenge_{NEW_TYPE}")
    init_repo(src)
    commit_all(src, "a new type", HEAD_TAG)
    return render(src, tmp_path_factory.mktemp("new-type-collab") / "collab", {"challenge_type": NEW_TYPE})


@pytest.mark.slow
def test_a_new_type_collab_passes_its_tests_and_demo(new_type_collab: Path) -> None:
    """The contributor's path: the scaffold's stand-in task, rendered, installed and run as an organizer would."""
    assert sorted(p.name for p in new_type_collab.glob("challenge_*")) == [f"challenge_{NEW_TYPE}"]
    python = own_environment(new_type_collab)
    # Its own checks and its harness under the local job launcher: the rest of the backend's and the
    # dashboard's tests ran whole in the tsp collab's own environment above.
    passes_its_tests(new_type_collab, python, "tests", "backend/tests/test_api_jobs_local.py")
    out = passes_its_demo(new_type_collab, python)
    assert f"Demo of my-collab/{NEW_TYPE}-collab" in out
    assert "opened channel #approaches" in out and re.search(r"result r\S+ by ben: mae 0\b", out), out


def test_collab_python_is_ruff_clean(rendered: tuple[Combo, Path]) -> None:
    _, collab = rendered
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it is in the dev extra)")
    check = _run(collab, ruff, "check", "--no-cache", ".")
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run(collab, ruff, "format", "--no-cache", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
