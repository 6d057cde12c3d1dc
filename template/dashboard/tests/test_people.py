"""People sign in (local mode), post, reply, broadcast and rule on results; forms need their CSRF token."""

from __future__ import annotations

import re

import httpx
import pytest
from dashboard_world import TOKENS, Collab

from collab_dashboard.security import foreign_origin, safe_next
from collab_dashboard.sessions import SessionStore, Viewer


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(collab: Collab, user: str, next_path: str = "/") -> httpx.Client:
    """A browser-like client signed in through the local form."""
    client = httpx.Client(base_url=collab.url, timeout=30)
    page = client.get("/login", params={"next": next_path})
    response = client.post("/login", data={"csrf": csrf_of(page.text), "token": TOKENS[user][0]})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == next_path
    return client


def test_local_sign_in_sets_a_server_side_session_cookie(fresh: Collab) -> None:
    client = httpx.Client(base_url=fresh.url)
    page = client.get("/login")
    before = client.cookies["collab_session"]
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    response = client.post("/login", data={"csrf": csrf_of(page.text), "token": TOKENS["alice"][0]})
    after = client.cookies["collab_session"]
    assert response.status_code == 303 and after != before  # a new session id once signed in
    assert TOKENS["alice"][0] not in response.headers["set-cookie"]
    home = client.get("/").text
    assert "Signed in as <strong>alice</strong>" in home and TOKENS["alice"][0] not in home


def test_a_wrong_token_or_a_missing_csrf_token_signs_nobody_in(fresh: Collab) -> None:
    client = httpx.Client(base_url=fresh.url)
    page = client.get("/login")
    wrong = client.post("/login", data={"csrf": csrf_of(page.text), "token": "tok-nobody"})
    assert wrong.status_code == 400 and "unknown token" in wrong.text
    forged = client.post("/login", data={"csrf": "guess", "token": TOKENS["alice"][0]})
    assert forged.status_code == 403
    other_site = client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "token": TOKENS["alice"][0]},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403 and "another site" in other_site.text
    assert "Signed in" not in client.get("/").text


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/board?channel=general", "/board?channel=general"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_redirect_targets_cannot_leave_the_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_sign_in_redirects_only_within_the_site(fresh: Collab) -> None:
    client = httpx.Client(base_url=fresh.url)
    page = client.get("/login", params={"next": "https://evil.example/phish"})
    response = client.post("/login", data={"csrf": csrf_of(page.text), "token": TOKENS["bob"][0]})
    assert response.headers["location"] == "/"


def test_a_member_posts_and_replies_with_autocomplete_handles(fresh: Collab) -> None:
    fresh.agent("alice", "speedy")
    client = sign_in(fresh, "bob", "/board")
    board = client.get("/board").text
    assert 'data-autocomplete="/autocomplete"' in board
    assert client.get("/autocomplete", params={"q": "spe"}).json() == {"items": ["speedy"]}
    posted = client.post(
        "/post", data={"csrf": csrf_of(board), "body": "Hi @speedy, try K=5", "channel": "general", "next": "/board"}
    )
    assert posted.status_code == 303 and posted.headers["location"] == "/board"
    [message] = fresh.api.get("/v1/messages").json()["items"]
    assert message["author"] == "human-bob" and message["mentions"] == ["speedy"] and message["role"] == "human"
    assert "Posted." in client.get("/board").text  # the one-time message, shown once
    thread = client.get(f"/threads/{message['id']}").text
    reply = client.post(
        "/post",
        data={"csrf": csrf_of(thread), "body": "and K=7", "thread": message["id"], "next": f"/threads/{message['id']}"},
    )
    assert reply.headers["location"] == f"/threads/{message['id']}"
    replies = fresh.api.get(f"/v1/messages/{message['id']}/thread").json()["items"]
    assert [(r["body"], r["channel"]) for r in replies] == [("and K=7", "general")]
    kernels = client.get("/board?channel=kernels").text
    client.post("/post", data={"csrf": csrf_of(kernels), "body": "kernel talk", "channel": "kernels", "next": "/board"})
    root = fresh.api.get("/v1/messages", params={"channel": "kernels"}).json()["items"][0]["id"]
    page = client.get(f"/threads/{root}").text
    client.post(
        "/post",
        data={
            "csrf": csrf_of(page),
            "body": "a reply stays in its channel",
            "thread": root,
            "channel": "kernels",
            "next": f"/threads/{root}",
        },
    )
    [kernel_reply] = fresh.api.get(f"/v1/messages/{root}/thread").json()["items"]
    assert kernel_reply["channel"] == "kernels"
    assert 'name="channel" value="kernels"' in page
    inbox = sign_in(fresh, "alice").get("/board/me")  # alice's own handle is human-alice: not mentioned
    assert "Nobody has mentioned you yet" in inbox.text


def test_a_non_member_is_refused_by_the_backend(fresh: Collab) -> None:
    client = sign_in(fresh, "outsider")
    board = client.get("/board").text
    assert "only members of acme can post" in board and 'action="/post"' not in board
    csrf = re.search(r'name="csrf" value="([^"]+)"', board).group(1)  # type: ignore[union-attr]  # the sign-out form's
    forced = client.post("/post", data={"csrf": csrf, "body": "let me in", "channel": "general", "next": "/board"})
    assert forced.status_code == 303
    shown = client.get("/board").text
    assert "Not posted: only members of the challenge org may post as people" in shown and "[NOT_ORG_MEMBER]" in shown
    assert "Not posted" not in client.get("/board").text  # a one-time message
    assert fresh.api.get("/v1/messages").json()["items"] == []


def test_posting_without_the_csrf_token_or_signed_out_does_nothing(fresh: Collab) -> None:
    client = sign_in(fresh, "bob")
    refused = client.post("/post", data={"body": "x", "channel": "general"})
    assert refused.status_code == 403
    anonymous = httpx.Client(base_url=fresh.url)
    assert anonymous.post("/post", data={"csrf": "x", "body": "x"}).status_code == 403
    assert fresh.api.get("/v1/messages").json()["items"] == []


def test_only_organizers_see_broadcast_and_verdict_controls_and_the_backend_decides(fresh: Collab) -> None:
    fresh.agent("alice", "speedy")
    result = fresh.result("alice", "speedy", "r", 100, 2.3)
    bob = sign_in(fresh, "bob")
    assert "broadcast" not in bob.get("/board").text
    page = bob.get(f"/results/{result}").text
    assert 'action="/results/' not in page
    forced = bob.post(
        f"/results/{result}/verdict", data={"csrf": csrf_of(page), "verdict": "valid", "expected": "pending"}
    )
    assert forced.status_code == 303
    assert "only admins of the challenge org set verdicts" in bob.get(f"/results/{result}").text
    organizer = sign_in(fresh, "organizer")
    board = organizer.get("/board").text
    assert 'name="broadcast"' in board
    sent = organizer.post(
        "/post",
        data={
            "csrf": csrf_of(board),
            "body": "Rules changed",
            "channel": "general",
            "broadcast": "on",
            "next": "/board",
        },
    )
    assert sent.status_code == 303
    assert fresh.api.get("/v1/messages").json()["items"][0]["role"] == "organizer"
    page = organizer.get(f"/results/{result}").text
    assert 'value="invalid"' in page and 'name="expected" value="pending"' in page
    fresh.verdict(result, "valid", "someone else was faster")  # the verdict moves under the organizer's feet
    stale = organizer.post(
        f"/results/{result}/verdict",
        data={"csrf": csrf_of(page), "verdict": "invalid", "reason": "x", "expected": "pending"},
    )
    assert stale.status_code == 303
    assert "VERDICT_CHANGED" in organizer.get(f"/results/{result}").text
    assert fresh.api.get(f"/v1/results/{result}").json()["verdict"] == "valid"
    page = organizer.get(f"/results/{result}").text
    organizer.post(
        f"/results/{result}/verdict",
        data={"csrf": csrf_of(page), "verdict": "invalid", "reason": "cached", "expected": "valid"},
    )
    assert fresh.api.get(f"/v1/results/{result}").json()["verdict"] == "invalid"


def test_sign_out_forgets_the_session(fresh: Collab) -> None:
    client = sign_in(fresh, "bob")
    page = client.get("/").text
    old = client.cookies["collab_session"]
    out = client.post("/logout", data={"csrf": csrf_of(page), "next": "//evil.example"})
    assert out.status_code == 303 and out.headers["location"] == "/"
    replay = httpx.Client(base_url=fresh.url, cookies={"collab_session": old})
    assert "Signed in" not in replay.get("/").text


def test_local_sign_in_attempts_are_limited(fresh: Collab) -> None:
    client = httpx.Client(base_url=fresh.url)
    csrf = csrf_of(client.get("/login").text)
    codes = [client.post("/login", data={"csrf": csrf, "token": f"guess-{i}"}).status_code for i in range(21)]
    assert codes[:20] == [400] * 20
    last = client.post("/login", data={"csrf": csrf, "token": TOKENS["bob"][0]})
    assert "too many sign-in attempts" in last.text


def test_sessions_expire_are_bounded_and_hold_the_token_out_of_repr() -> None:
    now = [1000.0]
    store = SessionStore(lifetime_s=60, max_sessions=10, clock=lambda: now[0])
    viewer = Viewer("ada", {"acme": "admin"}, "secret-token")
    session = store.create(viewer)
    assert store.get(session.id) is session and "secret-token" not in repr(session)
    now[0] += 61
    assert store.get(session.id) is None
    short = store.create(viewer, expires=now[0] + 5)
    assert short.expires == now[0] + 5
    for _ in range(50):  # a flood of anonymous visits (sign-in forms) pushes out only anonymous sessions
        store.create()
    assert store.get(short.id) is short and len(store) == 11
    for _ in range(10):
        store.create(viewer)
    assert store.get(short.id) is None  # the least recently used signed-in session went first
    assert viewer.handle == "human-ada" and viewer.is_admin("acme") and not viewer.is_member("other")


@pytest.mark.parametrize(
    ("origin", "host", "foreign"),
    [
        (None, "a.example", False),
        ("https://a.example", "a.example", False),
        ("https://b.example", "a.example", True),
        ("null", "a.example", True),
    ],
)
def test_origin_check(origin: str | None, host: str, foreign: bool) -> None:
    assert foreign_origin(origin, host) is foreign
