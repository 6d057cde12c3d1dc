"""The dashboard in real headless Chromium (Debian's `chromium`, driven by Playwright; opt-in marker `browser`).

- every view renders the seeded collab, with its Content-Security-Policy, one h1, labelled controls
  and keyboard access, and a screenshot of each main view is drawn (the kit's README shows those
  of the demo collab, taken by the kit's tests/provision/local/test_demo_dashboard.py);
- a person signs in (local mode), posts with @-autocomplete, replies in a thread; a non-member
  gets no form; a page adds new messages live and unfolds a thread in place;
- the XSS corpus (tests/xss_corpus.py), posted as messages, replies, result descriptions, verdict
  reasons, agent bios and profiles, channel names, user names, file names, flags, rulings and run
  requests, runs no script and
  makes no request to another origin, counted with Playwright's dialog, console and request hooks
  and a `securitypolicyviolation` listener.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from dashboard_world import TOKENS, Collab
from xss_corpus import PAYLOADS, SHORT

from collab_backend.storage import InvalidPath
from collab_testing.browser import chromium

pytestmark = pytest.mark.browser

WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@dataclass
class Watched:
    """A page and everything it did that a script would do."""

    page: Any
    origin: str
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.origin + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        assert "content-security-policy" in response.headers, path
        self.visited.append(path)
        return response

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations || []"))

    def assert_clean(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.console == [], self.console
        assert self.foreign == [], self.foreign
        assert self.violations() == []


def watch(browser: Any, origin: str) -> Watched:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.add_init_script(WATCH)
    page = context.new_page()
    watched = Watched(page, origin)

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: watched.console.append(f"{message.type}: {message.text}"))
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(origin) or request.url.startswith("data:")
            else watched.foreign.append(request.url)
        ),
    )
    return watched


def sign_in(w: Watched, user: str, token: str | None = None) -> None:
    w.go("/login")
    w.page.fill("#token", token or TOKENS[user][0])
    w.page.click("form.stack button[type=submit]")
    w.page.wait_for_url(w.origin + "/")
    assert w.page.locator(".account strong").inner_text() == (HOSTILE_USER if user == "eve" else user)


# -- every view, headings, labels, keyboard, screenshots ----------------------------------------
VIEWS = {
    "overview": "/",
    "leaderboard": "/leaderboard",
    "lineage": "/lineage",
    "board": "/board",
    "agent": "/agents/speedy",
    "jobs": "/jobs",
    "join": "/join",
}


def check_structure(w: Watched, path: str) -> None:
    headings = w.page.evaluate("[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])")
    assert headings.count(1) == 1 and headings[0] == 1, (path, headings)
    assert all(b - a <= 1 for a, b in pairwise(headings) if b > a), (path, headings)
    unlabelled = w.page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]),textarea,select')]"
        ".filter(c => !c.labels.length && !c.getAttribute('aria-label')).map(c => c.outerHTML)"
    )
    assert unlabelled == [], (path, unlabelled)
    scripts = w.page.evaluate("[...document.scripts].map(s => s.src || 'inline')")
    assert scripts == [w.origin + "/static/app.js"], scripts


def test_every_view_renders_with_structure_and_screenshots(browser: Any, demo: Collab, tmp_path: Path) -> None:
    w = watch(browser, demo.url)
    ids = demo.ids  # type: ignore[attr-defined]
    extra = {"result": f"/results/{ids['mtp']}", "thread": f"/threads/{ids['hello']}", "job": f"/jobs/{ids['job']}",
             "search": "/board/search?q=mtp", "agents": "/agents", "me": "/board/me", "rulings": "/rulings",
             "run-requests": "/run-requests", "directions": "/directions", "credit": "/credit",
             "credit-rehearsal": "/credit?view=proxy"}  # fmt: skip
    for name, path in {**VIEWS, **extra}.items():
        response = w.go(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        check_structure(w, path)
        if name in VIEWS:
            shot = tmp_path / f"{name}.png"
            w.page.screenshot(path=str(shot))
            assert shot.stat().st_size > 5_000
    w.assert_clean()


def test_keyboard_reaches_the_content_and_the_navigation(browser: Any, demo: Collab) -> None:
    w = watch(browser, demo.url)
    w.go("/")
    w.page.keyboard.press("Tab")
    assert w.page.evaluate("document.activeElement.textContent") == "Skip to content"
    w.page.keyboard.press("Enter")
    assert w.page.evaluate("location.hash") == "#main"
    w.page.keyboard.press("Tab")
    inside = w.page.evaluate("document.activeElement.closest('main') !== null && document.activeElement.tagName")
    assert inside in ("A", "a")  # the first link of the content (a chart point), not the navigation again
    w.go("/board")
    for _ in range(3):
        w.page.keyboard.press("Tab")
    names = []
    for _ in range(10):
        names.append(w.page.evaluate("document.activeElement.textContent.trim()"))
        w.page.keyboard.press("Tab")
    assert "Leaderboard" in names and "Board" in names  # the navigation is reachable in order
    w.assert_clean()


# -- people: sign in, post with autocomplete, reply, live updates, unfolding, a non-member --------
def test_sign_in_post_with_autocomplete_and_reply(browser: Any, fresh: Collab) -> None:
    fresh.agent("alice", "speedy")
    fresh.agent("alice", "speculator")
    w = watch(browser, fresh.url)
    sign_in(w, "bob")
    w.go("/board")
    box = w.page.locator("#post-body")
    box.click()
    box.type("Nice run @spe")
    options = w.page.locator("#post-body-handles [role=option]")
    options.first.wait_for()
    assert options.all_inner_texts() == ["@speculator", "@speedy"]
    assert box.get_attribute("aria-expanded") == "true"
    w.page.keyboard.press("ArrowDown")
    assert w.page.locator("#post-body-handles [aria-selected=true]").inner_text() == "@speedy"
    w.page.keyboard.press("Enter")
    assert box.input_value() == "Nice run @speedy "
    box.type("what K did you use?")
    w.page.click("form.composer button[type=submit]")
    w.page.wait_for_selector(".flash")
    first = w.page.locator(".msg").first
    assert "Nice run @speedy what K did you use?" in first.inner_text()
    assert first.locator("a.mention").get_attribute("href") == "/agents/speedy"
    message = fresh.api.get("/v1/messages").json()["items"][0]
    w.go(f"/threads/{message['id']}")
    w.page.fill("#post-body", "Answering myself: K=7")
    w.page.click("form.composer button[type=submit]")
    w.page.wait_for_selector("text=Answering myself: K=7")
    assert fresh.api.get(f"/v1/messages/{message['id']}/thread").json()["items"][0]["author"] == "human-bob"
    w.assert_clean()


def test_a_non_member_gets_no_form(browser: Any, fresh: Collab) -> None:
    w = watch(browser, fresh.url)
    sign_in(w, "outsider")
    w.go("/board")
    assert w.page.locator("form.composer").count() == 0
    assert "only members of acme can post" in w.page.inner_text("main")
    w.assert_clean()


def test_new_messages_arrive_without_a_reload_and_threads_unfold(browser: Any, fresh: Collab) -> None:
    fresh.agent("alice", "speedy")
    root = fresh.post("alice", "speedy", "first thread")
    fresh.post("alice", "speedy", "a folded reply", thread=root)
    w = watch(browser, fresh.url)
    w.go("/board")
    navigations = []
    w.page.on("framenavigated", lambda frame: navigations.append(frame.url))
    assert w.page.locator("text=a folded reply").count() == 0
    w.page.click("details summary")
    w.page.wait_for_selector("details .msg >> text=a folded reply")
    fresh.post("alice", "speedy", "arrived **live**")
    w.page.wait_for_selector(".msg.fresh >> text=arrived", timeout=15_000)
    assert "Since this page was drawn" in w.page.inner_text(".live")
    assert navigations == []  # no reload
    w.assert_clean()


# -- the XSS corpus ----------------------------------------------------------------------------
HOSTILE_USER = "eve<svg onload=alert(99)>"


def seed_hostile(c: Collab) -> dict[str, list[str]]:
    """Every payload where agents (and a person with a hostile name) can put text."""
    table = json.loads(c.identity_file.read_text())
    table["tok-eve"] = {"user": HOSTILE_USER, "orgs": {"acme": "contributor"}}
    c.identity_file.write_text(json.dumps(table))
    bio = "\n\n".join(PAYLOADS)
    c.agent("alice", "mallory", model=SHORT[0], harness=SHORT[1][:100], tools=SHORT[2:22], bio=bio[:7900])
    c.agent("bob", "trudy", model=SHORT[3], harness=SHORT[4], tools=SHORT[5:9], bio=PAYLOADS[-1])
    made: dict[str, list[str]] = {"messages": [], "results": [], "channels": [], "files": [], "jobs": [],
                                  "rulings": [], "run_requests": []}  # fmt: skip
    for i, payload in enumerate(PAYLOADS):
        made["messages"].append(c.post("alice", "mallory", payload))
        if i % 3 == 0:
            c.post("bob", "trudy", f"re: {payload} @human-alice", thread=made["messages"][-1])
    eve = c.api.post("/v1/messages", json={"body": "a person with a hostile name says " + PAYLOADS[0]},
                     headers={"Authorization": "Bearer tok-eve"})  # fmt: skip
    assert eve.status_code == 201, eve.text
    c.post("alice", "mallory", "mentioning @human-" + HOSTILE_USER.lower() + " and @mallory")
    # Channel names the API would refuse, as a hand-edited record could hold them (no '/': the
    # channel's own file is named after it).
    for payload in [p for p in SHORT if "/" not in p][:10]:
        c.raw_channel(payload, description=payload)
        c.post("alice", "mallory", "in a hostile channel: " + payload, channel=payload)
        made["channels"].append(payload)
    parents: tuple[str, ...] = ()
    for i, payload in enumerate(PAYLOADS[:24]):
        where = f"results/{payload[:120]}.md"
        try:
            rid = c.result("alice", "mallory", f"x{i}", 100 + i, 2.3, parents=parents, description=payload, path=where)
        except (AssertionError, InvalidPath):  # a name the path rules refuse never reaches a page
            rid = c.result("alice", "mallory", f"x{i}", 100 + i, 2.3, parents=parents, description=payload)
        else:
            made["files"].append(where)
        made["results"].append(rid)
        parents = (rid,)
    c.write("mallory", {"runs/hostile/config.json": "{}"})
    for i, payload in enumerate(PAYLOADS[::4]):  # flags, rulings and run requests in agents' and organizers' words
        flag = c.call("POST", "/v1/flags", "bob", {"agent_id": "trudy", "technique": payload[:200], "reason": payload})
        ruling = {"decision": "accepted" if i % 2 else "rejected", "text": payload, "answers": [flag["id"]],
                  "scope": {"results": [made["results"][7]] if i == 1 else []}}  # fmt: skip
        made["rulings"].append(c.call("POST", "/v1/rulings", "organizer", ruling)["id"])
        request = {"agent_id": "mallory", "submission": "runs/hostile", "what": payload[:200], "why": payload}
        made["run_requests"].append(c.call("POST", "/v1/run-requests", "alice", request)["id"])
    for i, payload in enumerate(p for p in PAYLOADS if "\n" not in p and len(p) <= 300):  # the map of directions
        c.call("POST", "/v1/directions", "bob", {"agent_id": "trudy", "name": f"x{i}", "description": payload})
    c.verdict(made["results"][3], "invalid", PAYLOADS[2][:500])
    c.verdict(made["results"][5], "valid", PAYLOADS[6][:500])
    for payload in SHORT[10:14]:
        folder = f"jobs/{payload}"
        try:
            made["jobs"].append(c.job("bob", "trudy", folder))
        except (AssertionError, InvalidPath):
            continue
        made["files"].append(folder)
    for i, payload in enumerate(SHORT[14:20]):
        path = f"posts/{payload}.md"
        try:
            c.write("mallory", {path: f"---\nchannel: general\n---\n\npromoted {i}: {payload}"})
        except InvalidPath:
            continue
        response = c.api.post("/v1/messages/promote", json={"agent_id": "mallory", "path": path},
                              headers={"Authorization": f"Bearer {TOKENS['alice'][0]}"})  # fmt: skip
        if response.status_code < 300:
            made["files"].append(path)
    c.wait_jobs()
    return made


def test_the_xss_corpus_runs_nothing_and_loads_nothing_foreign(browser: Any, fresh: Collab) -> None:
    assert len(PAYLOADS) >= 50
    made = seed_hostile(fresh)
    assert len(made["files"]) >= 10, made["files"]  # hostile file names did reach the record
    w = watch(browser, fresh.url)
    pages = ["/", "/leaderboard", "/lineage", "/board", "/board/search?q=alert", "/board/search?q=script",
             "/agents", "/agents/mallory", "/agents/trudy", "/jobs", "/rulings", "/run-requests", "/directions",
             "/credit"]  # fmt: skip
    pages += [f"/board?channel={quote(name, safe='')}" for name in made["channels"]]
    pages += [f"/results/{rid}" for rid in made["results"]]
    pages += [f"/threads/{mid}" for mid in made["messages"][::6]]
    pages += [f"/jobs/{job}" for job in made["jobs"]]
    pages += [f"/rulings/{rid}" for rid in made["rulings"]] + [f"/run-requests/{r}" for r in made["run_requests"]]
    for path in pages:
        w.go(path)
        assert w.page.evaluate("[...document.querySelectorAll('*')].flatMap(e => [...e.attributes])"
                               ".filter(a => a.name.startsWith('on')).length") == 0, path  # fmt: skip
    w.go("/board")
    for summary in w.page.locator("details summary").all()[:5]:
        summary.click()
    w.page.wait_for_timeout(500)
    fresh.post("alice", "mallory", PAYLOADS[2] + " arriving live")
    w.page.wait_for_selector(".msg.fresh", timeout=15_000)
    sign_in(w, "eve", "tok-eve")  # a hostile user name in the page's header
    w.go("/board/me")
    w.assert_clean()
    alice = watch(browser, fresh.url)
    sign_in(alice, "alice")
    alice.go("/board/me")
    assert alice.page.locator(".mention.me").count() >= 1
    alice.assert_clean()
    assert len(w.visited) >= 50
    # the payloads are on the pages, as text
    w.go(f"/results/{made['results'][0]}")
    assert PAYLOADS[0] in w.page.inner_text("main")
    frames = w.page.evaluate(
        "document.querySelectorAll('iframe,object,embed,img:not([src^=\"/\"]),base,meta[http-equiv],link[href*=evil]').length"
    )
    assert frames == 0


def test_the_hooks_catch_a_broken_renderer(browser: Any, fresh: Collab, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the sanitizer switched off, the same hooks see the attack: the XSS test can fail."""
    from markdown_it import MarkdownIt

    from collab_dashboard import render

    class PassThrough:
        def clean(self, html: str) -> str:
            return html

    monkeypatch.setattr(render, "_CLEANER", PassThrough())
    monkeypatch.setattr(render, "_MD", MarkdownIt("commonmark", {"html": True}))
    fresh.agent("alice", "mallory")
    fresh.post("alice", "mallory", '<img src=x onerror=alert(1)> <img src="https://evil.example/p.gif">')
    w = watch(browser, fresh.url)
    w.go("/board")
    w.page.wait_for_timeout(300)
    assert any("img-src" in v or "script-src" in v for v in w.violations()), w.violations()
    with pytest.raises(AssertionError):
        w.assert_clean()
