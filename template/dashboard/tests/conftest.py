"""Fixtures of the dashboard's tests, and the opt-in switch of its browser tests.

Browser tests (marker `browser`) drive the system's Chromium (`/usr/bin/chromium`, Debian's
`chromium` package) through Playwright. They run when asked for, with `--run-browser` or
`COLLAB_BROWSER_TESTS=1` (the kit's `nox -s tests` and CI set it), and then fail loudly if
Chromium or Playwright is missing; otherwise they are reported as skipped with the way to run
them, never counted as passing. Every other test of the dashboard runs everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_world import Collab, seed_demo

BROWSER_ENV = "COLLAB_BROWSER_TESTS"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-browser", action="store_true", default=False, help="run the dashboard's Chromium tests")


def browser_wanted(config: pytest.Config) -> bool:
    return bool(config.getoption("--run-browser")) or os.environ.get(BROWSER_ENV, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if browser_wanted(config):
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(
                pytest.mark.skip(reason=f"opt-in: drives Chromium; run with --run-browser or {BROWSER_ENV}=1")
            )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collab]:
    """A running collab with a small, plausible history (module-wide: tests here only read it)."""
    collab = Collab(tmp_path_factory.mktemp("demo"))
    try:
        collab.ids = seed_demo(collab)  # type: ignore[attr-defined]
        yield collab
    finally:
        collab.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Collab]:
    """A running collab of its own, for tests that write."""
    collab = Collab(tmp_path)
    try:
        yield collab
    finally:
        collab.close()
