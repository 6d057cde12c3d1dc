"""The registry and the contract: lookups stay cheap, and every broken plug-in is named with its fault."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from provision.challenge_types import (
    ENTRY_POINT_GROUP,
    ChallengeType,
    CheckResult,
    DemoScript,
    load_type,
    registered,
)
from provision.challenge_types.claims import check_claimed_fields, is_number
from provision.challenge_types.contract import render_task
from provision.challenge_types.registry import check_entry_point
from provision.errors import ChallengeTypeError
from provision.spec import ChallengeSpec, load_spec, type_names


def _never(filename: str, frontmatter: Any, body: str, spec: Any) -> CheckResult:
    return CheckResult(None, "never decides")


def _package(root: Path, name: str = "demo") -> Path:
    """An empty but well-placed package folder for a type called `name`."""
    package = root / f"challenge_{name}"
    (package / "harness").mkdir(parents=True)
    (package / "examples").mkdir()
    return package


def _declare(package: Path, **changes: Any) -> ChallengeType:
    fields: dict[str, Any] = {
        "name": package.name.removeprefix("challenge_"),
        "title": "Demo",
        "summary": "a demo type",
        "package_dir": package,
        "cheap_check": _never,
    }
    return ChallengeType(**{**fields, **changes})


# ---------------------------------------------------------------- the registry


def test_looking_names_up_imports_no_plugin() -> None:
    code = (
        "import sys; from provision.challenge_types import registered; names = registered(); "
        "print(sorted(names), [m for m in sys.modules if m.startswith('challenge_')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['gemma', 'tsp'] []"


def test_bundled_types_load() -> None:
    for name in registered():
        assert load_type(name).name == name


def test_an_unknown_name_suggests_the_registered_ones() -> None:
    with pytest.raises(
        ChallengeTypeError, match=r"unknown challenge type 'tps'; did you mean 'tsp'\? registered types"
    ):
        load_type("tps")


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, ENTRY_POINT_GROUP)


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_an_entry_point_that_does_not_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, monkeypatch, "challenge_broken", "import a_module_that_is_not_installed\n")
    with pytest.raises(
        ChallengeTypeError, match=r"registered as challenge_broken:challenge_type but does not import: "
    ):
        check_entry_point(_entry("broken", "challenge_broken:challenge_type"))


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
        ("x = 1\n", "AttributeError"),
    ],
)
def test_any_failure_while_importing_is_reported_as_the_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, error: str
) -> None:
    _module(tmp_path, monkeypatch, "challenge_odd", source)
    with pytest.raises(ChallengeTypeError, match=f"does not import: {error}"):
        check_entry_point(_entry("odd", "challenge_odd:challenge_type"))


def test_an_object_missing_hooks_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(
        tmp_path,
        monkeypatch,
        "challenge_partial",
        """
        from types import SimpleNamespace
        challenge_type = SimpleNamespace(name="partial", title="Partial", summary="half a type")
        """,
    )
    with pytest.raises(ChallengeTypeError) as raised:
        check_entry_point(_entry("partial", "challenge_partial:challenge_type"))
    message = str(raised.value)
    assert "is a SimpleNamespace, not a ChallengeType" in message
    assert "it lacks package_dir, cheap_check, harness" in message


def test_a_declaration_error_at_import_names_the_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, "bad")
    (tmp_path / "challenge_bad" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from provision.challenge_types import ChallengeType, CheckResult
            challenge_type = ChallengeType(
                name="bad", title="Bad", summary="bad", package_dir=Path(__file__).parent,
                cheap_check=lambda *a: CheckResult(None, "x"), harness="../../etc",
            )
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "challenge_bad", raising=False)
    expected = r"^entry point challenge_bad:challenge_type: challenge type 'bad' is declared wrongly:\n  - harness"
    with pytest.raises(ChallengeTypeError, match=expected):
        check_entry_point(_entry("bad", "challenge_bad:challenge_type"))


def test_the_registered_name_must_be_the_declared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type_names, "registered", lambda: {"other": _entry("other", "challenge_tsp:challenge_type")})
    with pytest.raises(ChallengeTypeError, match="calls itself 'tsp'"):
        load_type("other")


# ---------------------------------------------------------------- the declaration


def test_a_sound_declaration(tmp_path: Path) -> None:
    declared = _declare(_package(tmp_path))
    assert declared.package == "challenge_demo"
    assert declared.entrypoint == tmp_path / "challenge_demo" / "harness" / "run.py"
    assert declared.copier_fragment == tmp_path / "challenge_demo" / "copier" / "spec.jinja"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Demo"}, "a type name is lowercase"),
        ({"name": "demo\n"}, "a type name is lowercase"),
        ({"name": 7}, "a type name is lowercase"),
        ({"title": ""}, "title '': one line"),
        ({"title": "x" * 81}, "1 to 80 characters"),
        ({"summary": "two\nlines"}, "summary 'two\\\\nlines'"),
        ({"cheap_check": "valid"}, "cheap_check: a function"),
        ({"harness": "../elsewhere"}, "'..' leaves the package folder"),
        ({"harness": "harness/../../x"}, "'..' leaves the package folder"),
        ({"examples": "/etc"}, "write a relative path"),
        ({"examples": "C:\\examples"}, "write a relative path"),
        ({"task": ""}, "a path relative to the package folder"),
        ({"summary_schema": None}, "a path relative to the package folder"),
        ({"cpu_args": ["--engine", "fake"]}, "a tuple of strings"),
        ({"cpu_args": ("--state-dir=/tmp",)}, "may not set --state-dir"),
        ({"submission_config": "../submission.json"}, "submission_config '../submission.json': a relative path"),
        ({"submission_config": "/etc/passwd"}, "submission_config '/etc/passwd': a relative path"),
        ({"submission_config": 7}, "submission_config 7: a relative path"),
        ({"job_args": ("--ppl-cap", "2.42")}, "job_args: a function"),
        ({"denylist": "../denied.json", "submission_config": "s.json"}, "denylist '../denied.json': a relative path"),
        ({"denylist": "denied.json"}, "declare submission_config too"),
        ({"package_dir": "nowhere/at/all"}, "package_dir"),
        ({"demo": "words"}, "demo 'words': a DemoScript"),
        ({"demo": DemoScript(channel="Big Ideas")}, "demo.channel 'Big Ideas': lowercase"),
        ({"demo": DemoScript(reply=" ")}, "demo.reply: a sentence"),
        ({"demo": DemoScript(result_fields="tour")}, "demo.result_fields: a function"),  # type: ignore[arg-type]
        ({"demo": DemoScript(variants=[])}, "demo.variants: a tuple of DemoVariant"),  # type: ignore[arg-type]
    ],
)
def test_declaration_problems_are_named(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ChallengeTypeError, match=message):
        _declare(_package(tmp_path), **changes)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(ChallengeTypeError) as raised:
        _declare(_package(tmp_path), title="", harness="../h", cpu_args=("--private-dir",))
    assert str(raised.value).count("\n  - ") == 3


def test_the_package_folder_must_carry_the_type_name(tmp_path: Path) -> None:
    package = _package(tmp_path, "demo")
    with pytest.raises(ChallengeTypeError, match="must live in challenge_other/"):
        _declare(package, name="other")


def test_a_link_out_of_the_package_is_refused(tmp_path: Path) -> None:
    package = _package(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (package / "linked").symlink_to(outside)
    with pytest.raises(ChallengeTypeError, match="outside the package folder"):
        _declare(package, harness="linked")


# ---------------------------------------------------------------- hooks' helpers


def test_check_result_needs_a_known_verdict_and_a_reason() -> None:
    with pytest.raises(ChallengeTypeError, match="'valid', 'invalid' or None"):
        CheckResult("ok", "fine")  # type: ignore[arg-type]
    with pytest.raises(ChallengeTypeError, match="must give a reason"):
        CheckResult("invalid", "  ")


DOCUMENT = {
    "scoring": {"score_field": "tps", "noise": {"z": 2.5}, "metrics": [{"field": "ppl", "guardrail": {"max": 2.42}}]},
    "jobs": {"enabled": False},
}


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("score `${scoring.score_field}`", "score `tps`"),
        ("z=${scoring.noise.z} jobs=${jobs.enabled}", "z=2.5 jobs=false"),
        ("literal $${scoring.score_field} and $HOME", "literal ${scoring.score_field} and $HOME"),
        ("cap ${scoring.metrics.0.guardrail.max} on ${scoring.metrics.0.field}", "cap 2.42 on ppl"),
    ],
)
def test_task_placeholders(text: str, rendered: str) -> None:
    assert render_task(text, DOCUMENT, where="task.md") == rendered


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${scoring.nope}", r"\$\{scoring.nope\} names no spec value"),
        ("${scoring}", "is a dict; only single values"),
        ("${scoring.metrics}", "is a list; only single values"),
        ("${Scoring..x}", "is not a placeholder"),
        ("${__class__}", "names no spec value"),
        ("${scoring.metrics.1.field}", "names no spec value"),
        ("${scoring.noise.0}", "names no spec value"),
        ("${scoring.metrics.-1.field}", "is not a placeholder"),
        ("${scoring.metrics.0}", "is a dict; only single values"),
    ],
)
def test_task_placeholder_errors_name_the_file(text: str, message: str) -> None:
    with pytest.raises(ChallengeTypeError, match=f"task.md: .*{message}"):
        render_task(text, DOCUMENT, where="task.md")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the summary schema"),
        ("{not json", "cannot read the summary schema"),
        ('{"type": "array"}', "the summary schema must describe an object"),
        ('{"type": "object", "properties": {"x": {"type": "nope"}}}', "not a valid JSON Schema"),
    ],
)
def test_summary_schema_problems(tmp_path: Path, content: str | None, message: str) -> None:
    package = _package(tmp_path)
    if content is not None:
        (package / "summary.schema.json").write_text(content, encoding="utf-8")
    with pytest.raises(ChallengeTypeError, match=f"challenge_demo/summary.schema.json: {message}"):
        _declare(package).load_summary_schema()


# ---------------------------------------------------------------- claims every cheap check shares


@pytest.fixture(scope="module")
def gemma_spec(example_spec: Path) -> ChallengeSpec:
    return load_spec(example_spec).spec


GOOD = {"tps": 120.5, "ppl": 2.1, "method": "int4", "track": "lossless"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"tps": "fast"}, "`tps` must be a finite number"),
        ({"tps": float("nan")}, "`tps` must be a finite number"),
        ({"tps": True}, "`tps` must be a finite number"),
        ({"method": None, "track": None}, None),
        ({"ppl": 2.5}, "`ppl` = 2.5 is outside its guardrail <= 2.42"),
        ({"ppl": "2.1"}, "the metric `ppl` must be a finite number"),
        ({"track": "fastest"}, "`track` must be one of lossless, lossy"),
    ],
)
def test_claimed_fields(gemma_spec: ChallengeSpec, changes: dict[str, Any], reason: str | None) -> None:
    result = check_claimed_fields({**GOOD, **changes}, gemma_spec)
    if reason is None:
        assert result is None or "track" in result.reason
    else:
        assert result is not None and result.verdict == "invalid"
        assert reason in result.reason


def test_missing_fields_are_all_named(gemma_spec: ChallengeSpec) -> None:
    result = check_claimed_fields({"tps": 1}, gemma_spec)
    assert result is not None and "required field(s) missing: ppl, method, track" in result.reason


def test_a_sound_claim_leaves_the_verdict_to_the_type(gemma_spec: ChallengeSpec) -> None:
    assert check_claimed_fields(GOOD, gemma_spec) is None
    assert check_claimed_fields([1, 2], gemma_spec) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "number"), [(1, True), (2.5, True), (10**400, False), (True, False), ("1", False)])
def test_is_number(value: object, number: bool) -> None:
    assert is_number(value) is number


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (lambda spec: ["--ppl-cap", "2.42"], "a tuple of strings"),
        (lambda spec: ("--ppl-cap", 2.42), "a tuple of strings"),
        (lambda spec: ("--job-id", "x"), "--job-id: the launcher passes these itself"),
        (lambda spec: ("--state-dir=/etc",), "--state-dir=/etc: the launcher passes these itself"),
        (lambda spec: ("a\nb",), "printable characters"),
        (lambda spec: ("",), "printable characters"),
        (lambda spec: 1 / 0, "job_args failed on this spec: ZeroDivisionError"),
    ],
)
def test_job_args_that_a_launcher_could_not_pass_are_refused_with_the_types_name(
    tmp_path: Path, gemma_spec: ChallengeSpec, hook: Any, message: str
) -> None:
    declared = _declare(_package(tmp_path), job_args=hook)
    with pytest.raises(ChallengeTypeError, match=f"challenge_demo: .*{re.escape(message)}"):
        declared.job_arguments(gemma_spec)


def test_job_args_come_from_the_spec_and_default_to_none(tmp_path: Path, gemma_spec: ChallengeSpec) -> None:
    assert _declare(_package(tmp_path)).job_arguments(gemma_spec) == ()
    cap = gemma_spec.scoring.metrics[0].guardrail.max  # type: ignore[union-attr]
    declared = _declare(_package(tmp_path / "other"), job_args=lambda spec: ("--cap", str(cap)))
    assert declared.job_arguments(gemma_spec) == ("--cap", str(cap))
