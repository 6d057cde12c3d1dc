"""The rulings, run-request, directions and credit pages show what the API has, follow its cursors and pages,
answer an unknown id with the dashboard's 404 page, and show agent-written text only as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from dashboard_world import Collab
from xss_corpus import EVIL, PAYLOADS


class Elements(HTMLParser):
    """Every element of a page with its attributes, to look for what an injection would add."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def injected(html: str) -> list[str]:
    """What in the page could run or load something: event handlers, scripts other than ours, frames, bad links."""
    parser = Elements()
    parser.feed(html)
    bad = []
    for tag, attrs in parser.found:
        named = dict(attrs)
        if tag in ("iframe", "object", "embed", "base", "form", "input", "img", "svg", "video", "audio") and (
            tag not in ("form", "input") or named.get("action", "/").startswith(("javascript", "http"))
        ):
            bad.append(tag)
        if tag == "script" and named.get("src") != "/static/app.js":
            bad.append("script")
        bad += [f"{tag}[{k}]" for k, _ in attrs if k.startswith("on")]
        bad += [f"{tag}[{k}={v}]" for k, v in attrs if k in ("href", "src", "action", "formaction")
                and (v or "").strip().lower().startswith(("javascript:", "data:", "vbscript:"))]  # fmt: skip
        bad += [f"{tag}[{k}={v}]" for k, v in attrs if k != "href" and (v or "").startswith(EVIL)]  # a load, not a link
    return bad


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Collab, dict[str, str]]]:
    """Two agents, results, every payload as a flag's reason and a run request's why, rulings, every request state."""
    c = Collab(tmp_path_factory.mktemp("coordination"))

    def request(what: str, why: str) -> str:
        body = {"agent_id": "speedy", "submission": "runs/int4", "what": what, "why": why, "expected": 118.0}
        return str(c.call("POST", "/v1/run-requests", "alice", body)["id"])

    try:
        c.agent("alice", "speedy")
        c.agent("bob", "quant-bot")
        ids = {"base": c.result("alice", "speedy", "base", 96.0, 2.30)}
        ids["cached"] = c.result("bob", "quant-bot", "cached", 330.0, 2.29, parents=(ids["base"],))
        ids["child"] = c.result("bob", "quant-bot", "child", 335.0, 2.29, parents=(ids["cached"],))
        c.write("speedy", {"runs/int4/config.json": '{"bits": 4}'})
        ids["flag"] = c.call("POST", "/v1/flags", "alice", {"agent_id": "speedy", "result": ids["cached"],
                             "reason": "replays **cached** outputs"})["id"]  # fmt: skip
        for payload in PAYLOADS:
            c.call("POST", "/v1/flags", "bob", {"agent_id": "quant-bot", "technique": payload[:200], "reason": payload})
            request(payload[:200], payload)
        ids["rejected"] = c.call("POST", "/v1/rulings", "organizer", {"decision": "rejected",
                                 "text": "Allowed: " + PAYLOADS[0], "answers": []})["id"]  # fmt: skip
        ids["ruling"] = c.call("POST", "/v1/rulings", "organizer", {
            "decision": "accepted", "text": "Caching outputs is *not* decoding. " + PAYLOADS[2],
            "answers": [ids["flag"]], "scope": {"results": [ids["cached"]]}})["id"]  # fmt: skip
        ids["revoking"] = c.call("POST", "/v1/rulings", "organizer", {"decision": "accepted", "text": "Superseded.",
                                 "revokes": [ids["rejected"]]})["id"]  # fmt: skip
        opened = [request(f"int4 try {i}", "quota is short") for i in range(4)]
        ids["claimed"], ids["launched"], ids["withdrawn"], ids["open"] = opened
        c.call("POST", f"/v1/run-requests/{ids['claimed']}/claim", "bob", {"agent_id": "quant-bot", "minutes": 30})
        c.call("POST", f"/v1/run-requests/{ids['launched']}/claim", "bob", {"agent_id": "quant-bot"})
        launched = c.call("POST", f"/v1/run-requests/{ids['launched']}/launch", "bob", {"agent_id": "quant-bot"})
        ids["job"] = launched["id"]
        c.call("POST", f"/v1/run-requests/{ids['withdrawn']}/withdraw", "alice", {"agent_id": "speedy"})
        c.call("POST", "/v1/directions", "alice", {"agent_id": "speedy", "name": "int4", "description": "**4-bit**"})
        ids["better"] = c.result("bob", "quant-bot", "better", 120.0, 2.30, parents=(ids["base"],), direction="int4")
        c.verdict(ids["base"], "valid")
        c.verdict(ids["better"], "valid")  # +24 over base: quant-bot 18, speedy 6 (its parent's author)
        for i, payload in enumerate(p for p in PAYLOADS if "\n" not in p and len(p) <= 300):
            c.call("POST", "/v1/directions", "bob", {"agent_id": "quant-bot", "name": f"x{i}", "description": payload})
        c.post("alice", "speedy", "trying int4 weights", direction="int4")
        c.wait_jobs()
        yield c, ids
    finally:
        c.close()


def test_the_rulings_page_shows_rulings_and_flags_as_the_api_has_them(world: tuple[Collab, dict[str, str]]) -> None:
    c, ids = world
    html = c.web.get("/rulings").text
    rulings = c.api.get("/v1/rulings").json()["items"]
    assert [r["id"] for r in rulings] == [ids["revoking"], ids["ruling"], ids["rejected"]]
    for r in rulings:
        assert f'<a href="/rulings/{r["id"]}">{r["id"]}</a>' in html
    assert f'revoked by <a href="/rulings/{ids["revoking"]}">' in html
    assert "<em>not</em> decoding" in html  # the ruling's text is Markdown, rendered
    assert html.count("flag-open") == 50  # a page of flags, the newest (all open)
    assert "<strong>cached</strong>" not in html and "answered by" not in html  # the first flag is on the next page


def test_a_ruling_page_shows_its_scope_what_it_covers_and_links_from_the_result(
    world: tuple[Collab, dict[str, str]],
) -> None:
    c, ids = world
    ruling = c.api.get(f"/v1/rulings/{ids['ruling']}").json()
    assert ruling["covers"] == [ids["cached"]] and ruling["in_force"]
    html = c.web.get(f"/rulings/{ids['ruling']}").text
    assert "accepted</span>" in html and "In force</dt><dd>yes" in html
    assert f'<li><a href="/results/{ids["cached"]}">{ids["cached"]}</a></li>' in html
    assert f'#{ids["flag"]}">{ids["flag"]}</a>' in html
    revoked = c.web.get(f"/rulings/{ids['rejected']}").text
    assert f'no: revoked by <a href="/rulings/{ids["revoking"]}">' in revoked
    result = c.web.get(f"/results/{ids['cached']}").text
    assert f'by <a href="/rulings/{ids["ruling"]}">ruling:{ids["ruling"]}</a>' in result


def test_run_requests_show_originator_state_lease_job_and_sponsor(world: tuple[Collab, dict[str, str]]) -> None:
    c, ids = world
    claimed = c.web.get(f"/run-requests/{ids['claimed']}").text
    lease = c.api.get(f"/v1/run-requests/{ids['claimed']}").json()["lease"]
    assert lease["holder"] == "quant-bot"
    assert 'status-claimed">claimed' in claimed and 'held by <a class="author" href="/agents/quant-bot">' in claimed
    assert f'datetime="{lease["expires_at"]}"' in claimed and "int4 try 0" in claimed and "quota is short" in claimed
    done = c.web.get(f"/run-requests/{ids['launched']}").text
    assert 'status-done">done' in done and f'<a href="/jobs/{ids["job"]}">' in done
    assert 'Sponsor</dt><dd><a class="author" href="/agents/quant-bot">' in done
    for state in ("open", "claimed", "done", "withdrawn"):
        listed = [r["id"] for r in c.api.get("/v1/run-requests", params={"state": state}).json()["items"]]
        html = c.web.get("/run-requests", params={"state": state}).text
        assert listed and all(f'href="/run-requests/{rid}"' in html for rid in listed), state
        assert f'state={state}" aria-current="page"' in html
    only_withdrawn = c.web.get("/run-requests", params={"state": "withdrawn"}).text
    assert ids["withdrawn"] in only_withdrawn and ids["open"] not in only_withdrawn


def test_the_lists_follow_the_apis_cursors(world: tuple[Collab, dict[str, str]]) -> None:
    c, ids = world
    first = c.web.get("/run-requests?state=open").text
    page = c.api.get("/v1/run-requests", params={"state": "open", "limit": 50}).json()
    assert page["next"] and f'href="/run-requests?before={page["next"]}&amp;state=open"' in first
    second = c.web.get("/run-requests", params={"state": "open", "before": page["next"]}).text
    rest = c.api.get("/v1/run-requests", params={"state": "open", "before": page["next"]}).json()["items"]
    assert rest and all(f'href="/run-requests/{r["id"]}"' in second for r in rest)
    assert page["items"][0]["id"] not in second
    flags = c.api.get("/v1/flags", params={"limit": 50}).json()
    older = c.web.get("/rulings", params={"flags_before": flags["next"]}).text
    assert f'id="{ids["flag"]}"' in older and "<strong>cached</strong>" in older
    assert f'answered by <a href="/rulings/{ids["ruling"]}">' in older


def test_the_credit_page_shows_the_ledger_with_its_rule_and_the_proxy_rehearsal_labelled(
    world: tuple[Collab, dict[str, str]],
) -> None:
    c, _ = world
    ledger = c.api.get("/v1/credit").json()
    assert [(a["agent"], a["credit"]) for a in ledger["agents"]] == [("quant-bot", 18.0), ("speedy", 6.0)]
    html = c.web.get("/credit").text
    assert ledger["rule"].replace("'", "&#39;") in html and "24.00 tokens/s handed out over 1 result" in html
    assert re.search(r'<td>1</td><td><a class="author" href="/agents/quant-bot">quant-bot</a></td><td>18.00</td>', html)
    assert '<a href="/credit" aria-current="page">Ledger</a>' in html and "Rehearsal, not credit" not in html
    rehearsal = c.web.get("/credit", params={"view": "proxy"}).text
    assert "Rehearsal, not credit: rehearsal: the credit rule applied to proxy results" in rehearsal
    assert '<a href="/credit?view=proxy" aria-current="page">Proxy rehearsal</a>' in rehearsal
    second = c.web.get("/credit", params={"offset": 1}).text  # a page further: speedy alone, and the way back
    assert second.count('class="author"') == 1 and 'href="/agents/speedy"' in second
    assert '<a href="/credit?offset=0" rel="prev">' in second


def test_the_directions_page_shows_the_map_and_the_nudge_rule(world: tuple[Collab, dict[str, str]]) -> None:
    c, ids = world
    mapped = c.api.get("/v1/directions").json()
    html = c.web.get("/directions").text
    assert mapped["nudge_rule"] in html
    int4 = next(d for d in mapped["directions"] if d["name"] == "int4")
    assert (int4["results"], int4["posts"], sorted(int4["agents"])) == (1, 1, ["quant-bot", "speedy"])
    row = re.search(r'<tr id="d-int4">(.*?)</tr>', html, re.DOTALL)
    assert row is not None, html
    shown = " ".join(row.group(1).split())
    assert f'<td>1</td><td>1</td> <td><a href="/results/{ids["better"]}">120.00</a> by <a class="author" ' in shown
    assert all(f'href="/agents/{a}"' in shown for a in int4["agents"])
    assert "**4-bit**" in html and "<strong>4-bit" not in html  # a description is plain text
    empty = re.search(r'<tr id="d-x0">(.*?)</tr>', html, re.DOTALL)
    assert empty is not None and "none ranked" in empty.group(1) and "nobody yet" in empty.group(1)
    assert all(f'id="d-{d["name"]}"' in html for d in mapped["directions"])


@pytest.mark.parametrize(
    ("path", "status"),
    [("/rulings/ruling-0-0", 404), ("/run-requests/rr-0000000000000-0", 404), ("/run-requests?state=lost", 422),
     ("/run-requests?before=nope", 422), ("/credit?view=dream", 422), ("/credit?offset=-1", 422)],
)  # fmt: skip
def test_unknown_ids_get_the_error_page(world: tuple[Collab, dict[str, str]], path: str, status: int) -> None:
    response = world[0].web.get(path)
    assert response.status_code == status, response.text
    assert "content-security-policy" in response.headers and "<h1" in response.text


def test_agent_written_text_is_only_text(world: tuple[Collab, dict[str, str]]) -> None:
    c, ids = world
    pages = ["/rulings", f"/rulings/{ids['ruling']}", f"/rulings/{ids['rejected']}", "/run-requests",
             "/run-requests?state=open", "/directions", "/credit", "/credit?view=proxy"]  # fmt: skip
    pages += [f"/run-requests/{r['id']}" for r in c.api.get("/v1/run-requests", params={"limit": 200}).json()["items"]]
    seen = ""
    for path in pages:
        response = c.web.get(path)
        assert response.status_code == 200, (path, response.text)
        assert injected(response.text) == [], path
        seen += response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in seen  # there, as text
    assert "<script>alert" not in seen and "&lt;audio src=x onerror=alert(13)&gt;" in seen
