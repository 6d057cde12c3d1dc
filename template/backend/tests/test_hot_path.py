"""The hot paths of `POST /v1/messages` and `GET /v1/digest/{agent_id}` (hot_path.py) answer as the FastAPI routes do.

The same requests, sent to one app with them and to one without over the same clock, get the
same answers (status, body, the headers a client reads), leave the same record and the same
audit trail; and they serve the common cases themselves rather than handing them on.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from backend_world import Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab_backend.main import create_app
from collab_backend.models import Json
from collab_backend.routes import board as board_route
from collab_backend.routes import digest as digest_route
from collab_testing.hub import ADMIN_TOKEN

TOKENS = ["hf_alice_token", "hf_bob_token", ADMIN_TOKEN, "hf_nobody_token", ""]
AGENTS = ["speedy", "racer", "ghost", None, 5]
TEXT = st.sampled_from(["tried int4 @racer", "", "x" * 2100, "é\u2028ok", 7, None])


@st.composite
def posts(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    """A post as a client might send it: a body (maybe not one the API takes), a token, a content type."""
    body: dict[str, Any] = {}
    for name, values in (("agent_id", st.sampled_from(AGENTS)), ("body", TEXT),
                         ("channel", st.sampled_from([None, "general", "results", "nope", 3])),
                         ("thread", st.sampled_from([None, "first", "unknown-id"])),
                         ("refs", st.sampled_from([[], ["first"], ["unknown-id"], "first", [1]])),
                         ("direction", st.sampled_from([None, "quant"])), ("extra", st.just(1))):  # fmt: skip
        if draw(st.booleans()):
            body[name] = draw(values)
    token = draw(st.sampled_from(TOKENS))
    headers = {**auth(token)} if token else {}
    if draw(st.integers(0, 9)) == 0:
        headers["Authorization"] = f"Basic {token}"
    kind = draw(st.sampled_from(["application/json", "application/json", "text/plain", None]))
    if kind:
        headers["Content-Type"] = kind
    raw = json.dumps(body).encode() if draw(st.integers(0, 9)) else b'{"body": "cut'
    return headers, raw


def _world(root: Path, kind: str, clock: Clock, hot: bool) -> World:
    root.mkdir(parents=True, exist_ok=True)
    world = World(kind, root, make_spec(), clock)
    if not hot:
        world.app = create_app(world.ctx, hot_path=False)
    for name in ("alice", "bob"):
        world.user(name)
    return world


def _answer(response: Any, first: str | None) -> tuple[int, Any, dict[str, str]]:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    text = json.dumps(body).replace(first, "<first>") if first else json.dumps(body)
    read = {k: response.headers[k] for k in ("content-type", "retry-after", "allow") if k in response.headers}
    return response.status_code, json.loads(text), read


def _session(world: World, requests: list[tuple[dict[str, str], bytes]]) -> tuple[list[Any], Any]:
    with TestClient(world.app) as client:
        world.agent(client, "hf_alice_token", "speedy")
        world.agent(client, "hf_bob_token", "racer")
        first = client.post("/v1/messages", json={"agent_id": "speedy", "body": "root"}, headers=auth("hf_alice_token"))
        assert first.status_code == 201, first.text
        first_id = first.json()["id"]
        answers = []
        for headers, raw in requests:
            raw = raw.replace(b'"first"', json.dumps(first_id).encode())
            answers.append(_answer(client.post("/v1/messages", content=raw, headers=headers), first_id))
    bucket = world.spec.storage.audit_bucket  # the trail, as the stop flushed it
    trail = sorted(line for path in world.storage.paths(bucket, "audit/")
                   for line in world.storage.read(bucket, path).decode().splitlines())  # fmt: skip
    assert trail  # the test compares something
    return answers, trail


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(posts(), min_size=1, max_size=10), st.sampled_from(["local", "hub"]))
def test_the_hot_path_answers_as_the_route_does(requests: list[tuple[dict[str, str], bytes]], kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hot, cold = (_world(Path(tmp) / name, kind, Clock(), name == "hot") for name in ("hot", "cold"))
        hot_answers, hot_audit = _session(hot, requests)
        cold_answers, cold_audit = _session(cold, requests)
        assert hot_answers == cold_answers
        assert hot.record.state == cold.record.state
        assert hot_audit == cold_audit


class _Counting:
    """The services module as the FastAPI route sees it, counting the posts that reach the route."""

    def __init__(self, module: Any) -> None:
        self.module, self.calls = module, 0

    def __getattr__(self, name: str) -> Any:
        if name in ("post_raw", "post_human"):
            self.calls += 1
        return getattr(self.module, name)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> _Counting:
    found = _Counting(board_route.board)
    monkeypatch.setattr(board_route, "board", found)
    return found


def test_the_hot_path_serves_a_post_itself_and_hands_the_rest_to_the_route(tmp_path: Path, counting: _Counting) -> None:
    world = _world(tmp_path, "local", Clock(), hot=True)
    with TestClient(world.app) as client:
        world.agent(client, "hf_alice_token", "speedy")
        posted = client.post("/v1/messages", json={"agent_id": "speedy", "body": "hi"}, headers=auth("hf_alice_token"))
        assert posted.status_code == 201 and counting.calls == 0
        refused = client.post("/v1/messages", json={"agent_id": "speedy", "body": 5}, headers=auth("hf_alice_token"))
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "VALIDATION_FAILED"
        assert counting.calls == 0  # the model refused it before the service: the route worded the error
        as_person = client.post("/v1/messages", json={"body": "hi"}, headers={**auth(ADMIN_TOKEN)})
        assert as_person.status_code == 201 and counting.calls == 0
        plain = client.post("/v1/messages", content=b'{"agent_id": "speedy", "body": "hi"}',
                            headers={**auth("hf_alice_token"), "Content-Type": "text/plain"})  # fmt: skip
        assert plain.status_code != 201 and counting.calls == 0


def test_a_token_only_the_hub_can_check_goes_to_the_route_once_then_the_hot_path_serves_it(
    tmp_path: Path, counting: _Counting
) -> None:
    world = _world(tmp_path, "hub", Clock(), hot=True)
    carol = world.user("carol")  # a member whose token this backend has not looked up yet
    with TestClient(world.app) as client:
        first = client.post("/v1/messages", json={"body": "hello"}, headers=auth(carol))
        assert first.status_code == 201 and counting.calls == 1  # the route looked the token up on the Hub
        again = client.post("/v1/messages", json={"body": "again"}, headers=auth(carol))
        assert again.status_code == 201 and counting.calls == 1  # known now: served before the route
        two_types = [("authorization", f"Bearer {carol}"), ("content-type", "text/plain"),
                     ("content-type", "application/json")]  # fmt: skip
        twice = client.post("/v1/messages", content=b'{"body": "x"}', headers=two_types)
        assert twice.status_code == 422 and counting.calls == 1  # the route reads the first type: no JSON


DIGEST_AGENTS = ["speedy", "racer", "ghost", "", "speedy/", "a%2Fb", "sp%65edy", "%00"]
SINCE = ["first", "", "unknown-id", "x" * 64, "x" * 65, "é"]
LIMITS = ["1", "2", "50", "200", "201", "0", "05", "+5", " 5", "5.0", "1_0", "abc", "", "٣", "10" * 20]


@st.composite
def digests(draw: st.DrawFn) -> str:
    """A digest's URL as a client might ask it: any agent, `since` and `limit` in any form, once or twice, or more."""
    query = []
    for name, values in (("since", SINCE), ("limit", LIMITS), ("other", ["1"])):
        for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2]))):
            query.append(f"{name}={draw(st.sampled_from(values))}")
    path = f"/v1/digest/{draw(st.sampled_from(DIGEST_AGENTS))}"
    return path + ("?" + "&".join(query) if query or draw(st.booleans()) else "")


def _digest_session(world: World, urls: list[str]) -> list[Any]:
    with TestClient(world.app) as client:
        alice, bob = auth("hf_alice_token"), auth("hf_bob_token")
        world.agent(client, "hf_alice_token", "speedy")
        world.agent(client, "hf_bob_token", "racer")
        first = client.post("/v1/messages", json={"agent_id": "speedy", "body": "root @racer"}, headers=alice)
        assert first.status_code == 201, first.text
        first_id = first.json()["id"]
        for n in range(4):
            where = {"thread": first_id} if n % 2 else {"channel": "results"}
            posted = client.post(
                "/v1/messages", json={"agent_id": "racer", "body": f"@speedy {n}", **where}, headers=bob
            )
            assert posted.status_code == 201, posted.text
        return [_answer(client.get(url.replace("since=first", f"since={first_id}")), first_id) for url in urls]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(digests(), min_size=1, max_size=12))
def test_the_hot_digest_answers_as_the_route_does(urls: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hot, cold = (_world(Path(tmp) / name, "local", Clock(), name == "hot") for name in ("hot", "cold"))
        hot_answers, cold_answers = _digest_session(hot, urls), _digest_session(cold, urls)
        assert hot_answers == cold_answers


def test_the_hot_path_draws_a_digest_itself_and_hands_other_queries_to_the_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world(tmp_path, "local", Clock(), hot=True)
    routed: list[object] = []

    def answered_by_the_route(content: Any) -> Any:  # the route's own name for its answer (the hot path's is its own)
        routed.append(content["agent"])
        return Json(content)

    monkeypatch.setattr(digest_route, "Json", answered_by_the_route)
    with TestClient(world.app) as client:
        world.agent(client, "hf_alice_token", "speedy")
        hot = ["/v1/digest/speedy", "/v1/digest/speedy?limit=5&since=", "/v1/digest/ghost", "/v1/digest/speedy?since=x"]
        assert [client.get(url).status_code for url in hot] == [200, 200, 404, 422]
        assert routed == []  # drawn before the route, refusals included
        cold = ["/v1/digest/speedy?limit=05", "/v1/digest/speedy?limit=500", "/v1/digest/speedy?limit=1&other=2"]
        assert [client.get(url).status_code for url in cold] == [200, 422, 200]
        assert routed == ["speedy", "speedy"]  # a query the route reads otherwise is the route's to answer
