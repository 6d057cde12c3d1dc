"""Every page renders the demo collab with what the API says, with the security headers, and never invents data."""

from __future__ import annotations

import re

import httpx
import pytest
from dashboard_world import Collab

PAGES = [
    "/",
    "/leaderboard",
    "/leaderboard?track=lossy",
    "/lineage",
    "/lineage?track=lossless&agent=speedy",
    "/board",
    "/board?channel=kernels",
    "/board/search?q=mtp",
    "/board/me",
    "/agents",
    "/agents/speedy",
    "/jobs",
    "/run-requests",
    "/run-requests?state=open",
    "/rulings",
    "/join",
    "/login",
]


def csp_of(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in policy.split("; ")}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_the_security_headers(demo: Collab, path: str) -> None:
    response = demo.web.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    csp = csp_of(response)
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["img-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert html.count("<h1") == 1
    assert "style=" not in html and not re.search(r"<script(?![^>]*src=\"/static/app\.js\")", html)
    assert not re.search(r"(src|href)=\"(https?:)?//(?!huggingface\.co)", html), "nothing loads from another origin"


def test_ids_and_objects_have_their_pages(demo: Collab) -> None:
    ids = demo.ids  # type: ignore[attr-defined]
    for path in (
        f"/results/{ids['mtp']}",
        f"/threads/{ids['hello']}",
        f"/jobs/{ids['job']}",
        f"/fragments/thread/{ids['hello']}",
        f"/fragments/messages?after={ids['hello']}",
    ):
        response = demo.web.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "content-security-policy" in response.headers


def test_static_files_and_errors_carry_the_headers_too(demo: Collab) -> None:
    for path, status in (
        ("/static/app.js", 200),
        ("/static/app.css", 200),
        ("/theme.css", 200),
        ("/nope", 404),
        ("/results/r-unknown", 404),
        ("/agents/nobody", 404),
        ("/lineage?since=yesterday", 422),
    ):
        response = demo.web.get(path)
        assert response.status_code == status, (path, response.text)
        assert "content-security-policy" in response.headers and response.headers["x-content-type-options"] == "nosniff"
    assert demo.web.get("/theme.css").text == ":root { --accent: #ff9d00; }\n"


def test_overview_shows_the_apis_counts_and_records(demo: Collab) -> None:
    stats = demo.api.get("/v1/stats").json()
    html = demo.web.get("/").text
    assert f"<dt>Agents</dt><dd>{stats['agents']}</dd>" in html
    assert f"<dt>Results</dt><dd>{stats['results']['results']}</dd>" in html
    series = demo.api.get("/v1/series", params={"track": "lossless"}).json()["series"][0]
    assert html.count('class="pt') == sum(len(s["points"]) for s in demo.api.get("/v1/series").json()["series"])
    for point in series["points"]:
        assert f'href="/results/{point["id"]}"' in html
    assert 'class="record"' in html


def test_leaderboard_is_the_apis_ranking(demo: Collab) -> None:
    board = demo.api.get("/v1/leaderboard", params={"track": "lossless"}).json()["boards"][0]
    html = demo.web.get("/leaderboard?track=lossless").text
    rows = re.findall(
        r'<tr[^>]*>\s*<td>(?:<abbr[^>]*>)?=?(\d+)(?:</abbr>)?</td>\s*<td><a class="author" href="/agents/([^"]+)"', html
    )
    assert rows == [(str(s["rank"]), s["agent"]) for s in board["standings"]]
    for standing in board["standings"]:
        assert f"± {standing['margin']:,.2f}" in html
    ids = demo.ids  # type: ignore[attr-defined]
    assert f"<del>{ids['cached']}</del>" in html  # the excluded list names the invalid result


def test_lineage_strikes_invalid_results_with_the_reason(demo: Collab) -> None:
    ids = demo.ids  # type: ignore[attr-defined]
    html = demo.web.get("/lineage").text
    assert f"<del>{ids['cached']}</del>" in html and f"<del>{ids['child']}</del>" in html
    assert "replays cached outputs instead of decoding" in html
    assert f'(<a href="/results/{ids["cached"]}">{ids["cached"]}</a>)' in html  # the child names its invalid ancestor
    frontier = demo.api.get("/v1/lineage", params={"track": "lossless"}).json()["frontier"][0]["ids"]
    lossless = demo.web.get("/lineage?track=lossless").text
    assert lossless.count("frontier</span>") == len(frontier)
    assert 'class="frontier"' in lossless and "sha256:" in lossless
    only_bob = demo.web.get("/lineage?agent=quant-bot").text
    assert ids["mtp7"] not in only_bob.split('<h2 id="table-h">')[1] and ids["int4"] in only_bob


def test_board_folds_threads_and_unfolds_them(demo: Collab) -> None:
    ids = demo.ids  # type: ignore[attr-defined]
    html = demo.web.get("/board?channel=general").text
    assert "2 replies, latest by quant-bot" in html and f'data-fragment="/fragments/thread/{ids["hello"]}"' in html
    assert "int4 weights cost" not in html  # folded: replies are not on the page
    thread = demo.web.get(f"/threads/{ids['hello']}").text
    assert "int4 weights cost" in thread and "attention kernel first" in thread
    fragment = demo.web.get(f"/fragments/thread/{ids['hello']}").text
    assert fragment.count('class="msg') == 2 and "<html" not in fragment


def test_agent_page_shows_card_results_jobs_and_usage(demo: Collab) -> None:
    html = demo.web.get("/agents/speedy").text
    assert "gemma-4-31b" in html and "opencode" in html and "bash, hf, vllm" in html
    assert "<strong>speculative decoding</strong>" in html
    assert "Quota use in the last 24 hours: this agent 1 of 5" in html
    assert demo.ids["mtp"] in html  # type: ignore[attr-defined]


def test_jobs_show_status_charge_and_log_tail(demo: Collab) -> None:
    job = demo.ids["job"]  # type: ignore[attr-defined]
    listing = demo.web.get("/jobs").text
    assert job in listing and "succeeded" in listing
    page = demo.web.get(f"/jobs/{job}").text
    assert "harness: done" in page and "&lt;script&gt;alert(&#39;from a log&#39;)&lt;/script&gt;" in page
    assert "Charged</dt><dd>yes" in page


def test_join_gives_the_invite_link_and_a_prompt_pointing_at_the_readme(demo: Collab) -> None:
    html = demo.web.get("/join").text
    assert 'href="https://huggingface.co/organizations/acme/share/abcdefgh"' in html
    central = demo.document["storage"]["central_bucket"]
    assert f"cat .collab/hub/buckets/{central}/README.md" in html  # local mode
    assert demo.backend.url in html


def test_a_page_says_so_when_the_backend_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    collab = Collab(tmp_path)
    try:
        collab.backend.stop()
        response = collab.web.get("/")
        assert response.status_code == 503 and "cannot be reached" in response.text
        assert collab.web.get("/healthz").status_code == 503
    finally:
        collab.api.close()
        collab.web.close()
        collab.dashboard.stop()


def test_health_and_live(demo: Collab) -> None:
    health = demo.web.get("/healthz").json()
    assert health["ok"] is True and health["backend"] == demo.backend.url
    seq = health["seq"]
    assert demo.web.get("/live", params={"since": seq}).json()["kinds"] == {}
    assert demo.web.get("/live", params={"since": seq - 1}).json()["seq"] == seq
    assert demo.web.get("/autocomplete", params={"q": "sp"}).json() == {"items": ["speedy"]}
