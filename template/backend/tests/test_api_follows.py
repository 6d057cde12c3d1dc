"""Channel follows: what an agent's digest shows, durable, owner-only, bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from backend_world import SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import MessageEntry
from collab_backend.record.state import State
from collab_backend.services import follows
from collab_backend.services.follows import MAX_FOLLOWED


@pytest.fixture
def roomy(storage_kind: str, tmp_path, clock: Clock) -> World:  # type: ignore[no-untyped-def]
    text = SPEC_YAML.replace("raw_posts: {limit: 5,", "raw_posts: {limit: 500,")
    return World(storage_kind, tmp_path, make_spec(text), clock)


def _open_channel(client: TestClient, token: str, name: str) -> None:
    response = client.post("/v1/channels", json={"agent_id": "speedy", "name": name}, headers=auth(token))
    assert response.status_code == 201, response.text


def test_a_followed_channel_appears_in_the_digest_and_an_unfollowed_one_leaves(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        assert client.get("/v1/agents/speedy/follows").json()["channels"] == ["general"]
        assert list(client.get("/v1/digest/speedy").json()["channels"]) == ["general"]

        followed = client.put("/v1/agents/speedy/follows/results", headers=auth(token))
        assert followed.status_code == 200, followed.text
        assert followed.json()["channels"] == ["general", "results"]
        bob = roomy.user("bob")
        roomy.agent(client, bob, "helper")
        posted = client.post("/v1/messages", json={"agent_id": "helper", "body": "312 tok/s", "channel": "results"},
                             headers=auth(bob))  # fmt: skip
        assert posted.status_code == 201
        digest = client.get("/v1/digest/speedy").json()
        assert [m["body"] for m in digest["channels"]["results"]] == ["312 tok/s"]

        gone = client.delete("/v1/agents/speedy/follows/general", headers=auth(token))
        assert gone.json()["channels"] == ["results"]
        assert list(client.get("/v1/digest/speedy").json()["channels"]) == ["results"]


def test_posting_in_a_channel_follows_it_until_unfollowed(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        _open_channel(client, token, "kernels")
        client.post("/v1/messages", json={"agent_id": "speedy", "body": "x", "channel": "kernels"}, headers=auth(token))
        assert client.get("/v1/agents/speedy/follows").json()["channels"] == ["general", "kernels"]
        client.delete("/v1/agents/speedy/follows/kernels", headers=auth(token))
        assert client.get("/v1/agents/speedy/follows").json()["channels"] == ["general"]


def test_follows_survive_a_restart(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        client.put("/v1/agents/speedy/follows/results", headers=auth(token))
        client.delete("/v1/agents/speedy/follows/general", headers=auth(token))
    again = roomy.restarted()
    with TestClient(again.app) as client:
        assert client.get("/v1/agents/speedy/follows").json()["channels"] == ["results"]


def test_asking_again_writes_nothing(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        client.put("/v1/agents/speedy/follows/results", headers=auth(token))
        seq = roomy.record.state.seq
        for _ in range(3):
            assert client.put("/v1/agents/speedy/follows/results", headers=auth(token)).status_code == 200
        assert roomy.record.state.seq == seq


def test_only_the_owner_changes_an_agents_follows(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        alice = roomy.user("alice")
        roomy.agent(client, alice, "speedy")
        mallory = roomy.user("mallory")
        spoofed = client.put("/v1/agents/speedy/follows/results", headers=auth(mallory))
        assert spoofed.status_code == 403 and spoofed.json()["error"]["code"] == "AGENT_NOT_REGISTERED"
        anonymous = client.delete("/v1/agents/speedy/follows/general")
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHENTICATED"
        assert client.get("/v1/agents/speedy/follows").json()["channels"] == ["general"]


def test_unknown_channels_and_agents_are_refused(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        unknown = client.put("/v1/agents/speedy/follows/nowhere", headers=auth(token))
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "CHANNEL_UNKNOWN"
        long = client.put("/v1/agents/speedy/follows/" + "a" * 65, headers=auth(token))
        assert long.status_code == 422 and long.json()["error"]["code"] == "VALIDATION_FAILED"
        nobody = client.get("/v1/agents/nobody/follows")
        assert nobody.status_code == 404 and nobody.json()["error"]["code"] == "NOT_FOUND"


def test_the_number_of_followed_channels_is_bounded(roomy: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follows, "MAX_FOLLOWED", 3)
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        for name in ("a1", "a2", "a3"):
            _open_channel(client, token, name)
        for name in ("results", "a1", "a2"):
            assert client.put(f"/v1/agents/speedy/follows/{name}", headers=auth(token)).status_code == 200
        refused = client.put("/v1/agents/speedy/follows/a3", headers=auth(token))
        assert refused.status_code == 422 and "at most 3" in refused.json()["error"]["message"]
        # Every explicit follow is shown, the newest included; `general` gives way to them.
        assert list(client.get("/v1/digest/speedy").json()["channels"]) == ["results", "a1", "a2"]
        client.delete("/v1/agents/speedy/follows/a1", headers=auth(token))
        assert client.get("/v1/agents/speedy/follows").json()["channels"] == ["general", "results", "a2"]
    assert MAX_FOLLOWED == 50


def test_concurrent_follows_cannot_pass_the_cap(roomy: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from collab_backend.errors import APIError

    monkeypatch.setattr(follows, "MAX_FOLLOWED", 3)
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        names = [f"c{i}" for i in range(8)]
        for name in names:
            _open_channel(client, token, name)
        identity = roomy.ctx.identity.identify(token)
        # Hold the writer so that all eight requests pass the quick check before any is written.
        gate, batch = threading.Event(), roomy.storage.batch
        monkeypatch.setattr(roomy.storage, "batch", lambda *a, **k: (gate.wait(10), batch(*a, **k))[1])

        def follow(name: str) -> str:
            try:
                follows.set_follow(roomy.ctx, identity, "speedy", name, True)
                return "ok"
            except APIError as exc:
                return exc.code

        with ThreadPoolExecutor(8) as pool:
            outcomes = [pool.submit(follow, name) for name in names]
            time.sleep(0.3)
            gate.set()
            results = [o.result(timeout=10) for o in outcomes]
        assert sorted(results) == ["VALIDATION_FAILED"] * 5 + ["ok"] * 3
        assert sum(roomy.record.state.follows["speedy"].values()) == 3


_AUTHORS, _CHANNELS = ("a", "b"), ("general", "results", "help")
_POST = st.tuples(st.just("post"), st.sampled_from(_AUTHORS), st.sampled_from(_CHANNELS),
                  st.booleans(), st.sampled_from(("", *_AUTHORS)), st.booleans())  # fmt: skip
_STEPS = st.one_of(_POST, st.just(("undo",)), st.tuples(st.just("ask"), st.sampled_from(_AUTHORS), st.integers(1, 6)))


@settings(max_examples=200)
@given(st.lists(_STEPS, max_size=40))
@example([("post", "a", "help", False, "", False), ("ask", "a", 3), ("undo",),
          ("post", "a", "results", False, "", False), ("ask", "a", 3)])  # fmt: skip
def test_the_channels_an_agent_posted_in_are_those_of_its_latest_messages(steps: list[tuple[Any, ...]]) -> None:
    """Each message's channel as `State` keeps it (to spare decoding) answers as reading the messages would.

    Posts (replies, mentions, promotions from the same file among them), undone posts (a failed
    index write; the next post takes the same position) and questions about any window, in any
    order; after each step, each author is asked about a window, a smaller one and a larger one.
    At the end, the state is the one its remaining messages build afresh: an undone message takes
    back what it began (a channel's number, a thread's or an inbox's list, a promotion).
    """
    state = State()
    undos: list[Callable[[], None]] = []

    def check(who: str, last: int) -> None:
        own = state.by_author.get(who, [])
        latest_first = [state.messages[p].channel for p in reversed(own[-last:])]
        assert state.channels_posted(who, last) == list(dict.fromkeys(latest_first))

    for step in steps:
        if step[0] == "post":
            _, who, channel, reply, mention, promoted = step
            seq = state.seq + 1
            thread = state.messages[-1].id if reply and len(state.messages) else None
            source = {"bucket": "b", "path": "p.md", "hash": "h"} if promoted else None
            message = MessageEntry(seq, float(seq), f"m{seq}", who, "alice", channel, "hi", thread=thread,
                                   notify=(mention,) if mention else (), source=source)  # fmt: skip
            undos.append(state.apply(message))
        elif step[0] == "undo" and undos:
            undos.pop()()
        elif step[0] == "ask":
            check(step[1], step[2])
        for author in _AUTHORS:
            for last in (2, 1, 3):
                check(author, last)
    assert state.channels_posted("a", 0) == []
    afresh = State()
    for message in state.messages:
        afresh.apply(message)
    assert afresh == state
