"""Rate-limit windows survive a restart: the record's recent events are charged again at start."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from backend_world import ADMIN_TOKEN, SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient

from collab_backend.limits import charge_of

RESULT_MD = "---\ntps: 300\nppl: 2.31\nstatus: agent-run\nfingerprint: sha256:abc\nparents: []\n---\n\nK=7\n"


@pytest.fixture
def roomy(storage_kind: str, tmp_path, clock: Clock) -> World:  # type: ignore[no-untyped-def]
    text = SPEC_YAML.replace("raw_posts: {limit: 5,", "raw_posts: {limit: 50,").replace(
        "promotions: {limit: 5,", "promotions: {limit: 50,"
    )
    return World(storage_kind, tmp_path, make_spec(text), clock)


def _code(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.json()["error"]["code"]) if response.status_code >= 400 else ""


def test_raw_posts_stay_counted_across_a_restart(world: World, clock: Clock) -> None:
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        for i in range(5):
            assert (
                client.post(
                    "/v1/messages", json={"agent_id": "speedy", "body": f"{i}"}, headers=auth(token)
                ).status_code
                == 201
            )
    clock.now += 10
    with TestClient(world.restarted().app) as client:
        refused = client.post("/v1/messages", json={"agent_id": "speedy", "body": "sixth"}, headers=auth(token))
        assert refused.status_code == 429 and _code(refused) == "RATE_LIMITED"
        assert refused.headers["Retry-After"] == "50"
        clock.now += 51
        assert (
            client.post("/v1/messages", json={"agent_id": "speedy", "body": "later"}, headers=auth(token)).status_code
            == 201
        )


def test_promotions_and_registrations_stay_counted_across_a_restart(world: World, clock: Clock) -> None:
    with TestClient(world.app) as client:
        token = world.user("alice")
        for i in range(3):
            world.agent(client, token, f"agent-{i}")
        world.write(token, world.bucket_of("agent-0"), {f"p{i}.md": f"post {i}".encode() for i in range(5)})
        for i in range(5):
            promoted = client.post(
                "/v1/messages/promote", json={"agent_id": "agent-0", "path": f"p{i}.md"}, headers=auth(token)
            )
            assert promoted.status_code == 201, promoted.text
    with TestClient(world.restarted().app) as client:
        world.write(token, world.bucket_of("agent-0"), {"p5.md": b"post 5"})
        refused = client.post(
            "/v1/messages/promote", json={"agent_id": "agent-0", "path": "p5.md"}, headers=auth(token)
        )
        assert _code(refused) == "RATE_LIMITED"
        world.prepare_agent(token, "agent-3")
        fourth = client.post("/v1/agents", json={"agent_id": "agent-3"}, headers=auth(token))
        assert _code(fourth) == "RATE_LIMITED"
        again = client.post("/v1/agents", json={"agent_id": "agent-1"}, headers=auth(token))
        assert again.status_code == 200  # confirming one's own binding is not a registration


def test_events_outside_their_window_are_not_charged_again(world: World, clock: Clock) -> None:
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        for i in range(5):
            client.post("/v1/messages", json={"agent_id": "speedy", "body": f"{i}"}, headers=auth(token))
    clock.now += 61
    with TestClient(world.restarted().app) as client:
        for i in range(5):
            posted = client.post("/v1/messages", json={"agent_id": "speedy", "body": f"again {i}"}, headers=auth(token))
            assert posted.status_code == 201


def _charged(world: World) -> dict[tuple[str, str], int]:
    limits = world.ctx.limits
    out = {}
    for name in ("raw_posts", "promotions", "registrations"):
        for key, events in getattr(limits, name)._events.items():
            out[(name, key)] = len(events)
    return out


def test_every_write_is_replayed_against_the_limiter_and_key_that_charged_it(roomy: World) -> None:
    """charge_of must say, for each kind of write here, exactly what the service charged.

    Job launches are checked in test_api_jobs (they need a launcher); verdicts and broadcasts are
    organizers' and charge nothing (the broadcast here shows it).
    """
    world = roomy
    with TestClient(world.app) as client:
        alice = world.user("alice")
        member = world.add_user("carol", "hf_carol_token", {"acme": "contributor"})
        bucket = world.bucket_of("speedy")
        world.write(alice, bucket, {"p.md": b"promoted", "r.md": RESULT_MD.encode(), "tf/README.md": b"# tf",
                                    "artifacts/a.txt": b"a"})  # fmt: skip
        speedy = {"agent_id": "speedy"}

        def as_alice(method: str, url: str, **body: object) -> Callable[[], object]:
            return lambda: client.request(method, url, json={**speedy, **body}, headers=auth(alice))

        usage = {"model": "m", "input_tokens": 1, "output_tokens": 1}
        ruling = {"decision": "rejected", "text": "t"}
        actions: list[tuple[str, Callable[[], object]]] = [
            ("register", lambda: world.agent(client, alice, "speedy")),
            ("raw post", as_alice("POST", "/v1/messages", body="x")),
            ("human post", lambda: client.post("/v1/messages", json={"body": "hi"}, headers=auth(member))),
            ("broadcast", lambda: client.post("/v1/broadcasts", json={"body": "b"}, headers=auth(ADMIN_TOKEN))),
            ("promote", as_alice("POST", "/v1/messages/promote", path="p.md")),
            ("result", as_alice("POST", "/v1/results", path="r.md")),
            ("channel", as_alice("POST", "/v1/channels", name="mtp")),
            ("taskforce", as_alice("PUT", "/v1/taskforces/tf", path="tf/README.md")),
            ("note", as_alice("POST", "/v1/taskforces/tf/notes", body="n")),
            ("artifacts", as_alice("POST", "/v1/artifacts/sync", source="artifacts/")),
            ("tokens", as_alice("POST", "/v1/token-stats", **usage)),
            ("follow", lambda: client.put("/v1/agents/speedy/follows/results", headers=auth(alice))),
            ("profile", lambda: client.put("/v1/agents/speedy/profile", json={"bio": "b"}, headers=auth(alice))),
            ("flag", as_alice("POST", "/v1/flags", technique="t", reason="r")),
            ("ruling", lambda: client.post("/v1/rulings", json=ruling, headers=auth(ADMIN_TOKEN))),
        ]
        for name, act in actions:
            before, seq = _charged(world), world.record.state.seq
            response = act()
            assert getattr(response, "status_code", 201) < 300, (name, getattr(response, "text", ""))
            after = _charged(world)
            charged = [key for key, n in after.items() if n > before.get(key, 0)]
            written = world.record.state.log[seq:]
            replayed = [c for c in (charge_of(e, world.record.state) for e in written) if c is not None]
            assert sorted(replayed) == sorted(charged), name
