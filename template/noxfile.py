"""Tasks of this collab: `nox` runs validate and test, each in a fresh environment."""

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["validate", "test"]


@nox.session
def validate(session: nox.Session) -> None:
    """Check challenge.yaml against the schema and the cross-field rules."""
    session.install("-e", ".")
    session.run("collab", "validate")


@nox.session(default=False)
def plan(session: nox.Session) -> None:
    """Show what `apply` would change on the Hub (needs HF_TOKEN, .env or `hf auth login`)."""
    session.install("-e", ".")
    session.run("collab", "plan", *session.posargs, success_codes=[0, 2])


@nox.session(default=False)
def apply(session: nox.Session) -> None:
    """Create or reconcile the collab's buckets and Spaces on the Hub."""
    session.install("-e", ".")
    session.run("collab", "apply", *session.posargs)


@nox.session(default=False)
def up(session: nox.Session) -> None:
    """Run the collab on this machine: buckets as folders, the backend and the dashboard on 127.0.0.1."""
    session.install("-e", ".", "-r", "backend/requirements.txt", "-r", "dashboard/requirements.txt")
    session.run("collab", "up", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """Run this collab's own tests."""
    session.install("-e", ".[test]", "-r", "backend/requirements.txt", "-r", "dashboard/requirements.txt")
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def browser(session: nox.Session) -> None:
    """The dashboard's tests in headless Chromium (needs Debian's `chromium` at /usr/bin/chromium)."""
    session.install("-e", ".[test,browser]", "-r", "backend/requirements.txt", "-r", "dashboard/requirements.txt")
    session.run("pytest", "dashboard/tests", "--run-browser", *session.posargs)
