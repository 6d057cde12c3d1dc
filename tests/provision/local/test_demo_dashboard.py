"""The demo collab's dashboard in headless Chromium: the README's screenshots are taken here.

The demo (`python -m provision.demo`, what `nox -s demo` runs) brings the rendered Gemma collab up
on loopback ports, the dashboard beside the backend, and plays its script. Once the script is
done, while the demo keeps the collab up, Debian's Chromium (driven by Playwright) opens the
dashboard's main views: each answers 200 with the Content-Security-Policy, shows what the demo's
agents did, runs no script but the dashboard's own and asks no other origin. A screenshot of each
is kept in `COLLAB_SCREENSHOTS_DIR` when set: `docs/screenshots/` is made by

    COLLAB_BROWSER_TESTS=1 COLLAB_SCREENSHOTS_DIR=docs/screenshots pytest tests/provision/local/test_demo_dashboard.py

Opt-in like the dashboard's other browser tests (marker `browser`: `COLLAB_BROWSER_TESTS=1` or
`--run-browser`; `nox -s tests` and CI run them). Every process is stopped by its PID.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_harness import Proc, alive, stop

from collab_testing.browser import chromium

pytestmark = pytest.mark.browser

VIEWS = {
    "overview": "/",
    "leaderboard": "/leaderboard",
    "lineage": "/lineage",
    "board": "/board",
    "agent": "/agents/ben",
    "jobs": "/jobs",
    "join": "/join",
}


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    wanted = os.environ.get("COLLAB_BROWSER_TESTS", "") not in ("", "0")
    if not (wanted or request.config.getoption("--run-browser", default=False)):
        pytest.skip("opt-in: drives Chromium; run with --run-browser or COLLAB_BROWSER_TESTS=1")
    with chromium() as launched:
        yield launched


def test_the_demo_collabs_dashboard_in_chromium(
    browser: Any, collab: Path, port: int, dashboard_port: int, tmp_path: Path
) -> None:
    demo = Proc("provision.demo", str(collab), "--seconds", "120", "--port", str(port), "--pause", "0",
                "--dashboard-port", str(dashboard_port))  # fmt: skip
    pids: list[int] = []
    try:
        started = demo.wait_for(r"Backend up at \S+ \(pid (\d+)\)\.\nDashboard up at (\S+) \(pid (\d+)\)\.")
        pids = [int(started.group(1)), int(started.group(3))]
        origin = started.group(2)
        demo.wait_for(r"The script is done; the collab stays up", timeout=120)
        job = re.search(r"-> (job-\d+-\d+): queued", demo.output)
        assert job is not None, demo.output
        expected = {
            "overview": ["ada", "ben"],
            "leaderboard": ["eve", "pending"],
            "lineage": ["cleo", "negative result", "never rank"],
            "board": ["speculative-decoding", "ada"],
            "agent": ["ben", job.group(1)],
            "jobs": [job.group(1), "ben"],
            "join": ["my-collab/gemma-collab-main-bucket", f"http://127.0.0.1:{port}"],
        }
        shown = _views(browser, origin, expected, tmp_path)
        assert set(shown) == set(VIEWS)
        demo.process.send_signal(signal.SIGINT)
        code = demo.finish(timeout=60)
    finally:
        stop(demo, *reversed(pids))
    out = demo.output
    assert code == 0 and "FAILED" not in out, out
    assert "Stopped the dashboard (pid " in out and not any(alive(pid) for pid in pids)


def _views(browser: Any, origin: str, expected: dict[str, list[str]], folder: Path) -> list[str]:
    """Open each main view; check it, and screenshot it. Returns the views shown."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    problems: list[str] = []

    def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}"))
    page.on("request", lambda r: None if r.url.startswith(origin) else problems.append(f"request to {r.url}"))
    keep = os.environ.get("COLLAB_SCREENSHOTS_DIR")
    shown = []
    for name, path in VIEWS.items():
        response = page.goto(origin + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        text = page.inner_text("main")
        missing = [word for word in expected[name] if word not in text]
        assert not missing, f"{path} lacks {missing}:\n{text}"
        assert page.evaluate("[...document.scripts].map(s => s.src)") == [f"{origin}/static/app.js"], path
        shot = folder / f"{name}.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 5_000
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
        shown.append(name)
    assert problems == [], problems
    context.close()
    return shown
