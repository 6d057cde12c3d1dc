"""The audit log: accepted and refused writes, in append-only segments, never a token."""

from __future__ import annotations

import json

from backend_world import Clock, World, auth
from fastapi.testclient import TestClient

from collab_backend import audit


def events(world: World) -> list[dict]:
    bucket = world.spec.storage.audit_bucket
    out = []
    for info in world.storage.list(bucket, "audit/").items:
        out += [json.loads(line) for line in world.storage.read(bucket, info.path).decode().splitlines()]
    return out


def test_writes_and_refusals_are_audited_without_tokens(world: World, client: TestClient) -> None:
    alice = world.user("alice")
    world.agent(client, alice, "speedy")
    posted = client.post("/v1/messages", json={"agent_id": "speedy", "body": "hi"}, headers=auth(alice)).json()
    client.post("/v1/messages", json={"agent_id": "speedy", "body": "x"}, headers=auth("hf_forged_token"))
    client.post("/v1/messages", json={"agent_id": "ghost", "body": "x"}, headers=auth(alice))
    client.post("/v1/agents", json={"agent_id": "speedy"}, headers=auth(alice))  # writes nothing: tallied
    client.get("/v1/messages")  # reads are not audited
    assert world.audit.flush() == 5
    logged = events(world)
    summary = [(e["method"], e["path"], e["status"], e["code"], e["user"], e.get("count")) for e in logged]
    assert summary == [
        ("POST", "/v1/agents", 201, None, "alice", None),
        ("POST", "/v1/messages", 201, None, "alice", None),
        ("POST", "/v1/messages", 401, "UNAUTHENTICATED", "(refused token)", 1),
        ("POST", "/v1/messages", 403, "AGENT_NOT_REGISTERED", "alice", 1),
        ("POST", "/v1/agents", 200, None, "alice", 1),
    ]
    entry = world.record.state.messages[world.record.state.position[posted["id"]]]
    assert logged[1]["entries"] == [entry.seq]  # an accepted write names the record entries it wrote
    raw = json.dumps(logged)
    assert "hf_alice_token" not in raw and "hf_forged_token" not in raw


def test_a_flood_of_refusals_costs_a_bounded_number_of_lines(world: World, client: TestClient, clock: Clock) -> None:
    before = world.audit.flush()
    for i in range(100):
        client.post("/v1/messages", json={"body": "x"}, headers=auth(f"hf_forged_{i}"))  # unauthenticated
        client.post(f"/v1/no-such-route-{i}", json={})  # every path a new one
    client.delete("/v1/messages")
    clock.now += audit.TALLY_WINDOW
    world.audit.flush(all_tallies=False)  # what the periodic flush does once the window passed
    logged = events(world)[before:]
    assert len(logged) == 3 and sum(e["count"] for e in logged) == 201
    assert {(e["path"], e["status"], e["count"]) for e in logged} == {
        ("/v1/messages", 401, 100), ("(no route)", 404, 100), ("/v1/messages", 405, 1),
    }  # fmt: skip
    for i in range(audit.MAX_TALLIES + 10):  # more kinds than it tells apart: the rest counted together
        world.audit.tally(method="POST", path=f"/v1/kind-{i}", status=404, accepted=False, code=None, user=None)
    world.audit.flush()
    kinds = events(world)[before + 3 :]
    assert len(kinds) == audit.MAX_TALLIES + 1 and sum(e["count"] for e in kinds) == audit.MAX_TALLIES + 10


def test_periodic_flushes_hold_tallies_until_their_window_passed(
    world: World, client: TestClient, clock: Clock
) -> None:
    client.post("/v1/messages", json={"body": "x"}, headers=auth("hf_forged"))
    assert world.audit.flush(all_tallies=False) == 0
    clock.now += audit.TALLY_WINDOW
    assert world.audit.flush(all_tallies=False) == 1


def test_each_flush_appends_a_new_segment(world: World, client: TestClient) -> None:
    alice = world.user("alice")
    world.agent(client, alice, "speedy")
    world.audit.flush()
    client.post("/v1/messages", json={"agent_id": "speedy", "body": "hi"}, headers=auth(alice))
    world.audit.flush()
    assert world.audit.flush() == 0  # nothing new, nothing written
    segments = world.storage.list(world.spec.storage.audit_bucket, "audit/").items
    assert len(segments) == 2
    assert world.storage.stat(world.spec.storage.central_bucket, [s.path for s in segments]) == {}
