"""Every developer task of the template repository.

`nox` runs lint, typecheck and tests (what CI runs); `nox -s demo` is the quick start's first
command. Each session installs what it needs into its own environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]

ROOT = Path(__file__).parent
BUILD = ROOT / "build"


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check, and the schemas (the kit's and the types') against their metaschema."""
    session.install("ruff==0.17.5", "check-jsonschema==0.39.0")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    schemas = sorted(ROOT.glob("schemas/*.json")) + sorted(ROOT.glob("challenge_*/schemas/*.json"))
    session.run("check-jsonschema", "--check-metaschema", *map(str, schemas))


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy, strict, over provision/, the challenge types, the backend and the Hub fake."""
    session.install(
        "-e", ".[dev]", "-r", "template/backend/requirements.txt", "-r", "template/dashboard/requirements.txt"
    )
    session.run("mypy")


# pip, not uv: the Gemma tests need torch, and pip's configured find-links provide its CPU build,
# where uv would fetch the multi-gigabyte CUDA build from PyPI.
@nox.session(venv_backend="virtualenv")
def tests(session: nox.Session) -> None:
    """The test suite (offline; opt-in markers for the live Hub and GPUs; the dashboard's Chromium tests run)."""
    session.install(
        "-e",
        ".[test,gemma-cpu]",
        "-r",
        "template/backend/requirements.txt",
        "-r",
        "template/dashboard/requirements.txt",
    )
    # The browser tests drive the system's Chromium (.ci/run installs Debian's `chromium` when missing).
    # One worker per core, at most eight (each imports torch); `-- -n 0` runs in one process.
    workers = str(min(os.cpu_count() or 1, 8))
    session.run(
        "pytest", "-n", workers, "--dist", "loadgroup", "--no-loadscope-reorder", *session.posargs,
        env={"COLLAB_BROWSER_TESTS": "1"},
    )  # fmt: skip


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Regenerate docs/challenge-spec.md and docs/cli.md from the schema and the CLI."""
    session.install("-e", ".")
    with (ROOT / "docs" / "challenge-spec.md").open("w", encoding="utf-8") as out:
        session.run("python", "-m", "provision.spec.reference", stdout=out)
    with (ROOT / "docs" / "cli.md").open("w", encoding="utf-8") as out:
        session.run("python", "-m", "provision.cli.reference", stdout=out)


@nox.session(default=False, venv_backend="virtualenv")
def vllm_surface(session: nox.Session) -> None:
    """Snapshot the pinned vLLM's argument surface into challenge_gemma/vllm_surface/surface.json.

    Downloads the vLLM wheel of the job image's version from the package index without installing
    it, and reads its Python source with `ast` (no vLLM import). `-- 0.34.0` reads another version.
    Then run the tests: test_gemma_vllm_surface.py reports every name, value and field to decide.
    """
    reader = ROOT / "challenge_gemma" / "vllm_surface" / "vllm_surface.py"
    version = session.posargs[0] if session.posargs else None
    if version is None:
        version = str(session.run("python", str(reader), "--pinned", silent=True)).strip()
    with tempfile.TemporaryDirectory() as scratch:
        session.run(
            "python", "-m", "pip", "download", f"vllm=={version}",
            "--no-deps", "--only-binary=:all:", "--dest", scratch,
        )  # fmt: skip
        wheels = sorted(Path(scratch).glob("vllm-*.whl"))
        if len(wheels) != 1:
            session.error(f"expected one vLLM wheel, found {[w.name for w in wheels]}")
        session.run("python", str(reader), str(wheels[0]))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Backend and dashboard benchmarks on a seeded local record; `-- --size large` or `-- --size all` for more."""
    session.install(
        "-e", ".[test]", "-r", "template/backend/requirements.txt", "-r", "template/dashboard/requirements.txt"
    )
    args = session.posargs or ["--size", "small"]
    session.run("python", "bench/backend.py", *args)
    session.run("python", "bench/dashboard.py", *args)


def _render(session: nox.Session, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    session.run("copier", "copy", "--defaults", "--vcs-ref", "HEAD", str(ROOT), str(dest))


@nox.session(default=False)
def render(session: nox.Session) -> None:
    """Render a collab with the default answers into build/collab."""
    session.install("copier==9.19.1")
    _render(session, BUILD / "collab")


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Render the Gemma collab, install it on its own, validate it, and run it here with scripted agents.

    The backend and the dashboard run as local processes (the dashboard's URL is printed first).
    The Gemma collab has jobs on by default, so one agent also runs a benchmark job on the local
    backend (the harness on its CPU stand-in). Arguments go to the demo: `nox -s demo -- --seconds
    120` keeps it up longer, `-- --port 8010` when port 8000 or 8001 (the dashboard's, `--port` + 1)
    is taken. Ctrl-C ends it early; it stops every process it started.
    """
    dest = BUILD / "demo"
    session.install("copier==9.19.1")
    _render(session, dest)
    session.chdir(dest)
    session.install("-e", ".", "-r", "backend/requirements.txt", "-r", "dashboard/requirements.txt")
    session.run("collab", "validate")
    session.run("python", "-m", "provision.demo", *session.posargs)
