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


@nox.session
def test(session: nox.Session) -> None:
    """Run this collab's own tests."""
    session.install("-e", ".[test]", "-r", "backend/requirements.txt")
    session.run("pytest", *session.posargs)
