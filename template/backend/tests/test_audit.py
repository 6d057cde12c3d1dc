"""The audit log: accepted and refused writes, in append-only segments, never a token."""

from __future__ import annotations

import json

from backend_world import World, auth
from fastapi.testclient import TestClient


def events(world: World) -> list[dict]:
    bucket = world.spec.storage.audit_bucket
    out = []
    for info in world.storage.list(bucket, "audit/").items:
        out += [json.loads(line) for line in world.storage.read(bucket, info.path).decode().splitlines()]
    return out


def test_writes_and_refusals_are_audited_without_tokens(world: World, client: TestClient) -> None:
    alice = world.user("alice")
    world.agent(client, alice, "speedy")
    client.post("/v1/messages", json={"agent_id": "speedy", "body": "hi"}, headers=auth(alice))
    client.post("/v1/messages", json={"agent_id": "speedy", "body": "x"}, headers=auth("hf_forged_token"))
    client.post("/v1/messages", json={"agent_id": "ghost", "body": "x"}, headers=auth(alice))
    client.get("/v1/messages")  # reads are not audited
    assert world.audit.flush() == 4
    logged = events(world)
    summary = [(e["method"], e["path"], e["status"], e["code"], e["user"]) for e in logged]
    assert summary == [
        ("POST", "/v1/agents", 201, None, "alice"),
        ("POST", "/v1/messages", 201, None, "alice"),
        ("POST", "/v1/messages", 401, "UNAUTHENTICATED", "(refused token)"),
        ("POST", "/v1/messages", 403, "AGENT_NOT_REGISTERED", "alice"),
    ]
    raw = json.dumps(logged)
    assert "hf_alice_token" not in raw and "hf_forged_token" not in raw


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
