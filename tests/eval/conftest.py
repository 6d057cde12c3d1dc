"""Fixtures of the eval service's tests, and the helpers they share with the backend's and the local target's."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for helpers in ("template/backend/tests", "tests/provision/local", "tests/provision/plan"):
    if str(ROOT / helpers) not in sys.path:
        sys.path.append(str(ROOT / helpers))  # backend_world, local_harness, plan_harness


@pytest.fixture
def port() -> int:
    """A port nothing listens on right now (the one after it is the eval service's, in `collab up`)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            found = int(s.getsockname()[1])
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", found + 1))
            except OSError:
                continue
        return found
