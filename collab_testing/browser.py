"""Debian's Chromium under Playwright, for the tests that open pages (the collab's and the kit's).

Playwright drives the system's browser (`COLLAB_CHROMIUM`, default `/usr/bin/chromium`); its own
browser download is never used. A missing browser or library fails the test with the install step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("COLLAB_CHROMIUM", "/usr/bin/chromium"))


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Chromium (Playwright's `Browser`), closed afterwards."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install playwright (its own browser download is never used)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
