"""Fixtures of the local target's tests: a fresh copy of a rendered collab, free loopback ports."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest


@pytest.fixture
def collab(tmp_path: Path, example_spec: Path) -> Path:
    """A copy of a collab rendered with the default answers (the Gemma type, its backend/ included)."""
    dest = tmp_path / "collab"
    shutil.copytree(example_spec.parent, dest, ignore=shutil.ignore_patterns(".git", ".collab"))
    return dest


@pytest.fixture
def port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dashboard_port(port: int) -> int:
    """Another port nothing listens on right now, not `port`."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            found = int(s.getsockname()[1])
        if found != port:
            return found
