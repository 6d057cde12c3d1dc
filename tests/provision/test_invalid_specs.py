"""The invalid-spec corpus: each broken challenge.yaml fails `collab validate` at the right place, helpfully.

Every file in cases/invalid/ is one spec with at least one error, every file in cases/warnings/ a
valid spec with warnings only. What `collab validate` must report is written in the case file
itself, as leading comment lines:

    # A free-form description of what is wrong.
    # expect: 13:11 $.jobs.flavor | not one of the allowed values | did you mean 'a10g-small'?
    # warn: 11:3 $.scoring.order | renamed to 'scoring.direction'

`expect` is an error and `warn` a warning, at 1-based LINE:COL of the case file, about the value at
the JSON path; each `|`-separated fragment must appear in that problem's printed text (headline,
found, expected or hint). A case lists every problem it should produce: anything else printed is a
surprise and fails the case, as does a second problem at the same spot unless it is listed twice.
Specs that cannot carry a comment (no text at all, bytes that are not UTF-8, control characters,
nesting deeper than Python's recursion limit) are built below, in GENERATED, with the same notation.

Each case runs the real CLI in-process and `check_spec`, and both must agree.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.cli import main
from provision.spec import check_spec
from provision.spec.problems import json_path

CASES = Path(__file__).parent / "cases"

_EXPECT = re.compile(
    r"#\s*(?P<tag>expect|warn):\s*(?P<line>\d+):(?P<col>\d+)\s+(?P<path>\$\S*)\s*\|\s*(?P<fragments>.+)"
)
_EXPECT_TAG = re.compile(r"#\s*(expect|warn)\b")
_HEADLINE = re.compile(r"(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<path>\$.*?): (?P<message>.*)")
_DETAIL = re.compile(r" {4}(found|expected|hint): .*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Expected:
    """One problem a case must produce."""

    severity: str
    line: int
    col: int
    path: str
    fragments: tuple[str, ...]

    @property
    def key(self) -> tuple[str, int, int, str]:
        return (self.severity, self.line, self.col, self.path)

    def __str__(self) -> str:
        return f"{self.line}:{self.col}: {self.severity}: {self.path} | {' | '.join(self.fragments)}"


@dataclass(frozen=True)
class Reported:
    """One problem as `collab validate` printed it."""

    severity: str
    line: int
    col: int
    path: str
    text: str

    @property
    def key(self) -> tuple[str, int, int, str]:
        return (self.severity, self.line, self.col, self.path)


@dataclass(frozen=True)
class Case:
    """A spec to validate: `write` puts it under a temporary folder and returns what to pass to the CLI."""

    name: str
    write: Callable[[Path], Path]
    expected: tuple[Expected, ...]


def parse_expectations(lines: list[str], where: str) -> tuple[Expected, ...]:
    """The `# expect:` and `# warn:` lines of a case, read from its leading comment block."""
    out = []
    for raw in lines:
        line = raw.strip()
        if not line.startswith("#"):
            break
        if not _EXPECT_TAG.match(line):
            continue
        match = _EXPECT.fullmatch(line)
        if not match:
            raise ValueError(f"{where}: malformed expectation {line!r}; write `# expect: LINE:COL $.path | fragment`")
        fragments = tuple(f.strip() for f in match["fragments"].split(" | ") if f.strip())
        severity = "error" if match["tag"] == "expect" else "warning"
        out.append(Expected(severity, int(match["line"]), int(match["col"]), match["path"], fragments))
    if not out:
        raise ValueError(f"{where}: a case needs at least one `# expect:` or `# warn:` line")
    return tuple(out)


def file_case(path: Path) -> Case:
    lines = path.read_text(encoding="utf-8").splitlines()
    return Case(path.name, lambda _tmp: path, parse_expectations(lines, str(path)))


def generated_case(name: str, data: bytes, *expect: str) -> Case:
    """A case whose bytes are built here; it is written as challenge.yaml and validated by folder."""

    def write(tmp_path: Path) -> Path:
        (tmp_path / "challenge.yaml").write_bytes(data)
        return tmp_path

    return Case(f"generated:{name}", write, parse_expectations([f"# {e}" for e in expect], name))


MINIMAL = """\
spec_version: 2
challenge:
  org: acme
  slug: fast-decode
  title: Fast decode
  type: gemma
scoring:
  score_field: tps
"""

GENERATED = [
    generated_case("empty", b"", "expect: 1:1 $ | the spec is empty | copier copy"),
    generated_case("whitespace_only", b"  \n\n\t\n   \n", "expect: 1:1 $ | the spec is empty"),
    generated_case(
        "not_utf8",
        MINIMAL.replace("Fast decode", "Caf\xe9 decode").encode("latin-1"),
        "expect: 5:13 $ | not UTF-8 | byte 0xe9 | save the file as UTF-8",
    ),
    generated_case(
        "control_character",
        MINIMAL.replace("Fast decode", "Fast\x07decode").encode(),
        "expect: 5:14 $ | U+0007 is not allowed | remove the control character",
    ),
    generated_case(
        "control_character_in_comment",
        ("# \x1b[31mred\x1b[0m\n" + MINIMAL).encode(),
        "expect: 1:3 $ | U+001B is not allowed",
    ),
    # Far deeper than Python's recursion limit: the parser must refuse it at the first level too
    # many (column 83, as for cases/invalid/deep_nesting.yaml), not at 1:1.
    generated_case(
        "nesting_beyond_recursion_limit",
        (MINIMAL + "  required_fields: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
        "expect: 9:83 $ | nests deeper than 64 levels",
    ),
]

INVALID = [file_case(p) for p in sorted((CASES / "invalid").glob("*.yaml"))] + GENERATED
WARNINGS = [file_case(p) for p in sorted((CASES / "warnings").glob("*.yaml"))]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run `collab` in-process; an exception escaping it is a failure of its own, traceback shown."""
    try:
        code = main(list(argv))
    except Exception:
        pytest.fail(f"`collab {' '.join(argv)}` raised instead of reporting:\n{traceback.format_exc()}")
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def parse_output(output: str, file: str) -> tuple[list[Reported], list[str]]:
    """The problems printed for `file`, and every line that is neither a problem nor the summary."""
    problems: list[Reported] = []
    stray: list[str] = []
    for line in output.splitlines():
        head = _HEADLINE.fullmatch(line.removeprefix(f"{file}:")) if line.startswith(f"{file}:") else None
        if head:
            problems.append(Reported(head["severity"], int(head["line"]), int(head["col"]), head["path"], line))
        elif _DETAIL.fullmatch(line) and problems:
            problems[-1] = Reported(*problems[-1].key, problems[-1].text + "\n" + line)
        elif line.strip() and not line.startswith(f"{file}: "):
            stray.append(line)
    return problems, stray


def match_problems(expected: tuple[Expected, ...], reported: list[Reported]) -> list[str]:
    """Pair each expectation with one reported problem; describe what is missing and what is a surprise."""
    left = list(reported)
    failures = []
    for want in expected:
        same_spot = [r for r in left if r.key == want.key]
        fitting = [r for r in same_spot if all(f in r.text for f in want.fragments)]
        if fitting:
            left.remove(fitting[0])
        elif same_spot:
            left.remove(same_spot[0])
            missing = [f for f in want.fragments if f not in same_spot[0].text]
            failures.append(f"reported at {want.line}:{want.col} {want.path}, but the message lacks {missing}")
        else:
            failures.append(f"not reported: {want}")
    failures += [f"surprise: {r.text}" for r in left]
    return failures


def check_case(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], *, valid: bool) -> None:
    target = case.write(tmp_path)
    file = str(target / "challenge.yaml" if target.is_dir() else target)
    code, output = run_cli(capsys, "validate", str(target))

    assert "Traceback" not in output, output
    assert not _CONTROL.search(output), f"raw control characters reach the terminal: {output!r}"
    reported, stray = parse_output(output, file)
    failures = match_problems(case.expected, reported)
    assert not failures and not stray, "\n".join([*failures, *(f"stray output: {s}" for s in stray), "", output])
    assert code == (0 if valid else 1), output
    errors = sum(e.severity == "error" for e in case.expected)
    warnings = len(case.expected) - errors
    if valid:
        assert f"{file}: valid (" in output and f"; {warnings} warning(s))" in output, output
    else:
        assert f"{file}: {errors} error(s), {warnings} warning(s)" in output, output

    loaded, problems = check_spec(target)
    assert (loaded is not None) is valid
    assert {p.file for p in problems} == {file}
    assert sorted((p.severity, p.line, p.col, json_path(p.path)) for p in problems) == sorted(
        e.key for e in case.expected
    )
    if loaded is not None:
        assert [p.render() for p in loaded.warnings] == [p.render() for p in problems]


def test_the_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 25
    assert len(WARNINGS) >= 2


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_spec_is_rejected_at_the_right_place(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert any(e.severity == "error" for e in case.expected), "an invalid case expects at least one error"
    check_case(case, tmp_path, capsys, valid=False)


@pytest.mark.parametrize("case", WARNINGS, ids=[c.name for c in WARNINGS])
def test_warning_only_spec_is_valid_and_says_what_to_do(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert all(e.severity == "warning" for e in case.expected), "a warning case expects warnings only"
    check_case(case, tmp_path, capsys, valid=True)


def test_json_output_carries_location_path_and_hint(capsys: pytest.CaptureFixture[str]) -> None:
    path = CASES / "invalid" / "enum_jobs_flavor_typo.yaml"
    code, output = run_cli(capsys, "validate", str(path), "--json")
    assert code == 1
    report = json.loads(output)
    assert report["format_version"] == 1
    assert report["valid"] is False
    [problem] = report["problems"]
    assert problem["severity"] == "error"
    assert (problem["file"], problem["line"], problem["col"]) == (str(path), 13, 11)
    assert problem["path"] == "$.jobs.flavor"
    assert problem["found"] == "'a10g-smal'"
    assert "did you mean 'a10g-small'?" in problem["hint"]


def test_json_output_of_a_warning_only_spec_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    path = CASES / "warnings" / "deprecated_scoring_order.yaml"
    code, output = run_cli(capsys, "validate", str(path), "--json")
    assert code == 0
    report = json.loads(output)
    assert report["valid"] is True
    [problem] = report["problems"]
    assert (problem["severity"], problem["line"], problem["col"], problem["path"]) == (
        "warning",
        11,
        3,
        "$.scoring.order",
    )
    assert "'scoring.direction'" in problem["hint"]
