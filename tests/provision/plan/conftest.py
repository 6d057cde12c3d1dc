"""Fixtures of the provisioning tests: a rendered collab, the Hub fake, the CLI wired to it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from plan_harness import ADMIN_ORG, ORG, TOKEN, USER

from collab_testing.hub import FakeHub


@pytest.fixture
def collab(tmp_path: Path, example_spec: Path) -> Path:
    """A copy of a collab rendered with the default answers (its backend/ included)."""
    dest = tmp_path / "collab"
    shutil.copytree(example_spec.parent, dest, ignore=shutil.ignore_patterns(".git"))
    return dest


@pytest.fixture
def hub() -> FakeHub:
    fake = FakeHub()
    fake.add_user(USER, TOKEN, {ORG: "admin", ADMIN_ORG: "admin"})
    return fake


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, hub: FakeHub) -> Iterator[dict[str, str]]:
    """HF_TOKEN set, and the CLI's Hub client is the fake."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr("provision.hub.client.connect", lambda: hub)
    yield {"HF_TOKEN": TOKEN}
