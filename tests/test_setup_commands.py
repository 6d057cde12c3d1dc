"""Every command in SETUP.md's code blocks is run by a test here, or listed with the reason it cannot be.

The runbook is followed as written, in a collab rendered by its own `copier copy` command: the Hub
commands in process against the stateful Hub fake (`collab_testing`), the local ones for real
(`collab up` as a process on a free loopback port, stopped by its PID). Where SETUP.md shows a
command's output, the output must match it line by line, with these conventions of the runbook:

- a line `...` stands for any number of lines, and `...` inside a line for any text;
- a `<placeholder>` (`<you>`, `<org>`) stands for any text;
- a line `^C` is the terminal's echo of Ctrl-C, ended by the program's own newline: an empty line;
- the values in `VOLATILE` (process ids, ports, file counts, digests) are compared by shape only.

A command SETUP.md gains must be added to `RUN` (and run by the named test), `ELSEWHERE` or
`NOT_RUN`; an entry whose command left SETUP.md fails too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collab_testing.hub import FakeHub
from provision.cli import main
from provision.plan.apply import WaitPolicy
from provision.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "SETUP.md"
TOKEN = "hf_setupRunbookToken0123456789abcdef"  # noqa: S105  # a fake token: every output is scanned for it
ORG, ADMIN_ORG, USER = "my-collab", "my-collab-admin", "organizer"
CENTRAL = "my-collab/gemma-collab-main-bucket"
START_TIMEOUT = 60.0

# Commands a test below runs, and the test that runs it (its source names the command).
RUN = {
    "python3 --version && git --version": "test_prerequisites",
    "copier copy <template-repository-url> my-collab": "test_render_validate_commit",
    "copier copy --defaults --data challenge_type=tsp <template-repository-url> my-tsp-collab": (
        "test_a_tsp_collab_renders_validates_and_rehearses"
    ),
    "ls my-collab": "test_render_validate_commit",
    "cd my-collab": "test_render_validate_commit",
    "collab validate": "test_render_validate_commit",
    "git init && git add -A && git commit -m 'Render the collab'": "test_render_validate_commit",
    "git status --short": "test_render_validate_commit",
    "collab migrate --check": "test_render_validate_commit",
    "collab up": "test_rehearse_on_one_machine",
    "collab status --target local": "test_rehearse_on_one_machine",
    "collab plan": "test_plan_apply_status_readme_destroy_on_the_hub_fake",
    "collab apply": "test_plan_apply_status_readme_destroy_on_the_hub_fake",
    "collab status": "test_plan_apply_status_readme_destroy_on_the_hub_fake",
    "collab apply --overwrite-readme": "test_plan_apply_status_readme_destroy_on_the_hub_fake",
    "collab destroy": "test_plan_apply_status_readme_destroy_on_the_hub_fake",
    "collab destroy --confirm my-collab/gemma-collab": "test_plan_apply_status_readme_destroy_on_the_hub_fake",
}

# Commands another test runs (file::test, which must exist).
ELSEWHERE = {
    # The rendered collab's own suite and its demo, for each challenge type, in the collab's own environment
    # installed with SETUP's command (which the test reads from SETUP.md and finds in Copier's message).
    "pytest -q": "tests/template/test_render_matrix.py::test_collab_own_tests_pass",
    "pip install -e '.[test]' -r backend/requirements.txt -r dashboard/requirements.txt": (
        "tests/template/test_render_matrix.py::test_collab_own_tests_pass"
    ),
    # copier.run_update with unsafe=True (what --trust allows): an old collab brought to the current template.
    "copier update --trust": "tests/template/test_upgrade.py::test_update_keeps_owner_edits_and_migrates_once",
}

# Commands no test runs, and why.
NOT_RUN = {
    # Talks to the live Hub with a person's token; tests are offline. `collab plan` checks the token the same way.
    "hf auth whoami": "live Hub, a person's token",
    # Install from PyPI. The pins are the ones the noxfile installs (test_install_pins_agree).
    "pip install copier==9.19.1": "installs from PyPI",
    # The hf CLI copies to and from a live bucket; the Hub fake stands in for the library, not the CLI.
    # test_plan_apply_status_readme_destroy_on_the_hub_fake makes the same two copies through the fake.
    "hf buckets cp hf://buckets/my-collab/gemma-collab-main-bucket/README.md README.md": "live Hub (hf CLI)",
    "hf buckets cp README.md hf://buckets/my-collab/gemma-collab-main-bucket/README.md": "live Hub (hf CLI)",
    # A person reads the update's changes; its output is the update itself.
    "git diff": "a person reviews its output",
}

# Values compared by shape only, with the reason they vary.
VOLATILE = [
    (r"Python 3\.\d+\.\d+", "Python 3.x.y"),  # any Python 3.11+
    (r"git version \d+(\.\d+)+\S*", "git version x"),  # any recent git
    (r"README\.md: \d+ lines, sha256 [0-9a-f]{12}", "README.md: <n> lines"),  # the README's wording changes
    (r"\d+ (of \d+ )?file\(s\)", "<n> file(s)"),  # the harness, the backend sources, the record
    (r"Applied \d+ change\(s\)", "Applied <n> change(s)"),  # the Space's variables come and go with features
    (r"pid \d+", "pid <pid>"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),  # tests listen on a free port
    (r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "since <time>"),
    (r"@@ -\d+,\d+ \+\d+,\d+ @@", "@@ <hunk> @@"),  # where the README's task section ends
]


@dataclass(frozen=True)
class Example:
    """A command of SETUP.md and the output shown after it (None when none is shown)."""

    section: str
    command: str
    expected: tuple[str, ...] | None
    line: int


def examples() -> list[Example]:
    """Every command of SETUP.md's code blocks: `$ `-lines of console blocks, every line of shell blocks."""
    out: list[Example] = []
    section, block, language, start = "", None, "", 0
    lines = SETUP.read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines, start=1):
        if block is None:
            if text.startswith("## "):
                section = text[3:].strip()
            elif text.startswith("```"):
                block, language, start = [], text[3:].strip(), number
            continue
        if not text.startswith("```"):
            block.append(text)
            continue
        if language == "console":
            out += _console(section, block, start)
        elif language in ("bash", "sh", "shell"):
            out += [
                Example(section, _command(t), None, start + i + 1)
                for i, t in enumerate(block)
                if t.strip() and not t.lstrip().startswith("#")
            ]
        block = None
    return out


def _console(section: str, block: list[str], start: int) -> list[Example]:
    found: list[Example] = []
    command, output, at = None, [], 0
    for i, text in enumerate([*block, "$ "]):
        if text.startswith("$ "):
            if command:
                found.append(Example(section, command, tuple(output) if output else None, at))
            command, output, at = _command(text[2:]), [], start + i + 1
        else:
            output.append(text)
    return found


def _command(text: str) -> str:
    """A command without its trailing comment, its quoting normalized."""
    text = re.sub(r"\s{2,}#.*$", "", text).strip()
    if "<" in text:  # a placeholder, not a redirection
        return text
    return shlex.join(shlex.split(text)).replace("' && '", " && ").replace("'&&'", "&&")


def example(section: str, command: str, occurrence: int = 0) -> Example:
    """The example of `command` in the section whose heading starts with `section`."""
    found = [e for e in examples() if e.section.startswith(section) and e.command == command]
    assert len(found) > occurrence, f"SETUP.md has no `{command}` in a section '{section}...'"
    return found[occurrence]


def _normal(line: str) -> str:
    for pattern, shown in VOLATILE:
        line = re.sub(pattern, shown, line)
    return line.rstrip()


def _pattern(line: str) -> re.Pattern[str]:
    parts = re.split(r"(\.\.\.|<[a-z][a-z0-9 _-]*>)", line)
    return re.compile("".join(".*" if p == "..." else ".+?" if p.startswith("<") else re.escape(p) for p in parts))


def assert_shows(ex: Example, output: str) -> None:
    """The output matches what SETUP.md shows after the command."""
    assert ex.expected is not None, f"SETUP.md:{ex.line}: `{ex.command}` shows no output to compare"
    expected = [_normal("" if x.strip() == "^C" else x) for x in ex.expected]
    actual = [_normal(x) for x in output.splitlines()]
    while expected and not expected[-1]:
        expected.pop()
    while actual and not actual[-1]:
        actual.pop()

    @functools.cache
    def fits(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "...":
            return fits(i + 1, j) or (j < len(actual) and fits(i, j + 1))
        return j < len(actual) and bool(_pattern(expected[i]).fullmatch(actual[j])) and fits(i + 1, j + 1)

    if not fits(0, 0):
        shown, got = "\n".join(expected), "\n".join(actual)
        pytest.fail(f"SETUP.md:{ex.line}: `{ex.command}` printed\n{got}\n\nwhere SETUP.md shows\n{shown}")


# -- the list is complete ----------------------------------------------------------------------


def test_every_command_is_run_or_listed_with_its_reason() -> None:
    commands = {e.command for e in examples()}
    listed = [*RUN, *ELSEWHERE, *NOT_RUN]
    assert len(listed) == len(set(listed)), "a command is listed twice"
    assert sorted(commands - set(listed)) == [], "commands of SETUP.md that no test runs and no list explains"
    assert sorted(set(listed) - commands) == [], "listed commands that SETUP.md no longer has"
    for command, test in RUN.items():
        function = globals().get(test)
        assert callable(function) and test.startswith("test_"), f"{test} (for `{command}`) is not a test here"
        assert repr(command) in _source(test) or f'"{command}"' in _source(test), f"{test} does not run `{command}`"
    for command, where in ELSEWHERE.items():
        path, _, name = where.partition("::")
        assert f"def {name}(" in (ROOT / path).read_text(encoding="utf-8"), f"{where} (for `{command}`) is gone"


def _source(name: str) -> str:
    """The source of a test or fixture of this module and of every fixture of this module it uses."""
    function = globals()[name]
    function = getattr(function, "__wrapped__", function)
    used = [p for p in inspect.signature(function).parameters if p in globals()]
    return inspect.getsource(function) + "".join(_source(p) for p in used)


def test_install_pins_agree() -> None:
    """SETUP's copier pin is the one the kit and its nox sessions install."""
    [pin] = [c for c in NOT_RUN if c.startswith("pip install copier==")]
    version = pin.split("==")[1]
    assert f'"copier=={version}"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"copier=={version}"' in (ROOT / "noxfile.py").read_text(encoding="utf-8")


# -- running them ------------------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GIT_", "HF_"))}
    env.update(
        HOME=str(home), GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(ROOT),
        GIT_AUTHOR_NAME="organizer", GIT_AUTHOR_EMAIL="organizer@example.org",
        GIT_COMMITTER_NAME="organizer", GIT_COMMITTER_EMAIL="organizer@example.org",
    )  # fmt: skip
    return env


def shell(command: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=_env(home), capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Step 5's `copier copy`, this checkout as the template and the answers from --defaults."""
    where = tmp_path_factory.mktemp("setup")
    command = example("5.", "copier copy <template-repository-url> my-collab").command
    argv = shlex.split(command.replace("<template-repository-url>", shlex.quote(str(ROOT))))
    argv[2:2] = ["--defaults", "--vcs-ref", "HEAD", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=where, env=_env(where), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return where / "my-collab"


@pytest.fixture
def collab(rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the rendered collab, as the current folder (`cd my-collab`)."""
    dest = tmp_path / "my-collab"
    shutil.copytree(rendered, dest, ignore=shutil.ignore_patterns(".git", ".collab"))
    monkeypatch.chdir(dest)
    yield dest


def cli(capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, str]:
    """Run a `collab ...` command in process; return its exit code and output (no token in it)."""
    argv = shlex.split(command)
    assert argv[0] == "collab"
    code = main(argv[1:])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert TOKEN not in output, "the token leaked into the output"
    return code, output


def test_prerequisites(tmp_path: Path) -> None:
    ex = example("0.", "python3 --version && git --version")
    done = shell(ex.command, tmp_path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert_shows(ex, done.stdout + done.stderr)


def test_render_validate_commit(rendered: Path, collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = example("5.", "ls my-collab")
    done = shell(ex.command, rendered.parent, rendered.parent)
    assert done.returncode == 0 and ex.expected is not None
    assert sorted(done.stdout.split()) == sorted(" ".join(ex.expected).split())

    example("6.", "cd my-collab")  # the `collab` fixture's current folder
    ex = example("6.", "collab validate")
    code, out = cli(capsys, ex.command)
    assert code == 0
    assert_shows(ex, out)

    # The invalid spec SETUP shows after it: its text block, one problem.
    shown = SETUP.read_text(encoding="utf-8").split("An\ninvalid spec gives one block per problem")[1]
    block = shown.split("```text\n")[1].split("```")[0]
    spec = collab / "challenge.yaml"
    valid = spec.read_text(encoding="utf-8")
    spec.write_text(valid.replace("direction: maximize", "direction: maximise", 1), encoding="utf-8")
    code, out = cli(capsys, "collab validate")
    assert code == 1 and out.startswith(block), f"collab validate printed\n{out}\nwhere SETUP.md shows\n{block}"
    spec.write_text(valid, encoding="utf-8")

    ex = example("7.", "git init && git add -A && git commit -m 'Render the collab'")
    done = shell(ex.command, collab, collab.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    ex = example("Upgrading", "git status --short")
    done = shell(ex.command, collab, collab.parent)
    assert done.returncode == 0 and done.stdout == "", "must print nothing: " + done.stdout

    ex = example("Upgrading", "collab migrate --check")
    code, out = cli(capsys, ex.command)
    assert code == 0
    assert_shows(ex, out)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The Hub fake as the CLI's Hub, HF_TOKEN set, and apply's waits without sleeping."""
    fake = FakeHub()
    fake.add_user(USER, TOKEN, {ORG: "admin", ADMIN_ORG: "admin"})
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr("provision.hub.client.connect", lambda: fake)
    monkeypatch.setattr("provision.cli.deploy.WaitPolicy", functools.partial(WaitPolicy, sleep=lambda _s: None))
    return fake


def test_plan_apply_status_readme_destroy_on_the_hub_fake(
    collab: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = example("8.", "collab plan")
    code, out = cli(capsys, ex.command)
    assert code == 2
    assert_shows(ex, out)

    ex = example("9.", "collab apply")
    code, out = cli(capsys, ex.command)
    assert code == 0, out
    assert_shows(ex, out)
    ex = example("9.", "collab status")
    code, out = cli(capsys, ex.command)
    assert code == 0
    assert_shows(ex, out)

    # Step 10: the organizers copy the README out, add their part to the task section, copy it back.
    readme = collab / "README.md.bucket"
    hub.download_bucket_files(CENTRAL, [("README.md", readme)], token=TOKEN)  # hf buckets cp hf://... README.md
    text = readme.read_text(encoding="utf-8")
    edited = text.replace(
        "\n## How this collab works",
        "\nOffice hours: Tuesdays 16:00 UTC on the help channel.\n\n## How this collab works",
    )
    assert edited != text
    hub.batch_bucket_files(
        CENTRAL, add=[(edited.encode(), "README.md")], token=TOKEN
    )  # hf buckets cp README.md hf://...
    ex = example("10.", "collab plan")
    code, out = cli(capsys, ex.command)
    assert code == 0
    assert_shows(ex, out)
    ex = example("10.", "collab apply --overwrite-readme")
    code, out = cli(capsys, ex.command)
    assert code == 0
    assert_shows(ex, out)

    ex = example("Tearing down", "collab destroy")
    code, out = cli(capsys, ex.command)
    assert code == 1
    assert_shows(ex, out)
    ex = example("Tearing down", "collab destroy --confirm my-collab/gemma-collab")
    code, out = cli(capsys, ex.command)
    assert code == 0, out
    # Its check: `collab plan` shows every resource as `+ create` again (jobs, a check only, stays a no-op).
    code, out = cli(capsys, "collab plan")
    assert code == 2 and "7 to create, 0 to update, 1 unchanged." in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_rehearse_on_one_machine(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`collab up` as a process (on free ports rather than 8000, 8001), `collab status --target local` while it runs."""
    up, status = example("Rehearse", "collab up"), example("Rehearse", "collab status --target local")
    rehearse(collab, capsys, up, status)


def for_collab(ex: Example, collab: Path) -> Example:
    """What SETUP shows for the Gemma collab in my-collab/, as the collab in `collab` prints it."""
    slug = load_spec(collab / "challenge.yaml").spec.challenge.slug
    changes = (
        ("gemma-collab", slug),
        ("my-collab/.collab/", f"{collab.name}/.collab/"),
        (" in my-collab)", f" in {collab.name})"),
    )
    lines = list(ex.expected or ())
    for old, new in changes:
        lines = [x.replace(old, new) for x in lines]
    return dataclasses.replace(ex, expected=tuple(lines) if ex.expected else None)


def rehearse(collab: Path, capsys: pytest.CaptureFixture[str], up: Example, status: Example, servers: int = 2) -> None:
    """Step 7's rehearsal: `up` as a process, `status` while it runs, Ctrl-C, `status` again.

    `servers`: the backend and the dashboard, and the eval service in a collab that verifies in an eval Space.
    """
    ex = for_collab(up, collab)
    port, dashboard_port = _free_port(), _free_port()
    log = collab.parent / "up.log"
    with log.open("w", encoding="utf-8") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "provision.cli", *shlex.split(ex.command)[1:], "--port", str(port),
             "--dashboard-port", str(dashboard_port)],
            cwd=collab, env=_env(collab.parent), stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    pids: list[int] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Press Ctrl-C to stop." not in log.read_text(encoding="utf-8"):
            assert up.poll() is None and time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.05)
        pids = [int(pid) for pid in re.findall(r"\(pid (\d+);", log.read_text(encoding="utf-8"))]
        assert len(pids) == servers, log.read_text(encoding="utf-8")

        status = for_collab(status, collab)
        code, output = cli(capsys, status.command)
        assert code == 0, output
        assert_shows(status, output)

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
        assert_shows(ex, log.read_text(encoding="utf-8"))
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    code, output = cli(capsys, "collab status --target local")
    assert code == 0 and "not running (`collab up` starts it)" in output


def test_a_tsp_collab_renders_validates_and_rehearses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Step 5's tsp example, then steps 5 to 7 and the rehearsal as SETUP says a tsp collab differs."""
    ex = example("5.", "copier copy --defaults --data challenge_type=tsp <template-repository-url> my-tsp-collab")
    command = ex.command
    argv = shlex.split(command.replace("<template-repository-url>", shlex.quote(str(ROOT))))
    argv[2:2] = ["--vcs-ref", "HEAD", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    collab = tmp_path / "my-tsp-collab"
    shown = example("5.", "ls my-collab").expected
    assert shown is not None
    assert "as it verifies in an eval Space by default, an `eval/` folder too" in " ".join(
        SETUP.read_text(encoding="utf-8").split()
    )
    assert sorted(p.name for p in collab.iterdir() if not p.name.startswith(".")) == sorted(
        [*" ".join(shown).replace("challenge_gemma", "challenge_tsp").split(), "eval"]
    )
    monkeypatch.chdir(collab)
    said = re.search(r"A tsp collab validates as `([^`]+)`", " ".join(SETUP.read_text(encoding="utf-8").split()))
    code, out = cli(capsys, "collab validate")
    assert code == 0 and said is not None
    assert out.strip() == "challenge.yaml: " + said.group(1), out
    status = example("Rehearse", "collab status --target local")
    assert status.expected is not None
    assert "shows a third server, `eval`, the eval service" in " ".join(SETUP.read_text(encoding="utf-8").split())
    assert "the type has no stand-in private set, no `private_set` line" in " ".join(
        SETUP.read_text(encoding="utf-8").split()
    )
    lines = [line for line in status.expected if not line.lstrip().startswith("private_set ")]
    dashboard = next(i for i, line in enumerate(lines) if line.lstrip().startswith("dashboard "))
    lines.insert(dashboard + 1, lines[dashboard].replace("dashboard", "eval     ", 1).replace(
        "dashboard", "eval"))  # fmt: skip
    status = dataclasses.replace(status, expected=tuple(lines))
    rehearse(collab, capsys, with_eval(example("Rehearse", "collab up")), status, servers=3)


def with_eval(up: Example) -> Example:
    """`collab up`'s output as SETUP.md shows it for a tsp collab: the eval service a third server, no private set."""
    assert up.expected is not None
    lines: list[str] = []
    shown = list(up.expected)
    at = next(i for i, line in enumerate(shown) if line.lstrip().startswith("private_set ("))
    del shown[at : at + 2]  # the type has no stand-in private set: neither the action nor its one change
    for line in shown:
        line = line.replace("Local target applied: 15 change(s).", "Local target applied: 14 change(s).")
        if line.startswith("Stopping the dashboard"):
            lines.append(line.replace("dashboard", "eval"))
        lines.append(line.replace("Stopped (", "Stopped (eval: exit 0, "))
        if line.startswith("Dashboard running at"):
            lines.append(line.replace("Dashboard", "Eval").replace("dashboard.log", "eval.log"))
        elif line.lstrip().startswith("dashboard "):
            lines.append(line.replace("dashboard", "eval     ", 1).rstrip() + "healthz")
    return dataclasses.replace(up, expected=tuple(lines))
