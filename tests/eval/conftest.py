"""Fixtures of the eval service's tests."""

from __future__ import annotations

import socket

import pytest


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
