"""Registration: the happy path and the attacks, on both adapters."""

from __future__ import annotations

import pytest
from backend_world import World, auth
from fastapi.testclient import TestClient


def test_register_then_confirm(world: World, client: TestClient) -> None:
    alice = world.user("alice")
    world.prepare_agent(alice, "speedy")
    first = client.post("/v1/agents", json={"agent_id": "speedy"}, headers=auth(alice))
    assert first.status_code == 201, first.text
    assert first.json()["user"] == "alice" and first.json()["bucket"] == "acme/fast-speedy"
    again = client.post("/v1/agents", json={"agent_id": "speedy"}, headers=auth(alice))
    assert again.status_code == 200
    assert client.get("/v1/agents/speedy").json()["user"] == "alice"
    assert [a["agent_id"] for a in client.get("/v1/agents").json()["items"]] == ["speedy"]


def test_an_agent_id_is_bound_to_one_user_for_good(world: World, client: TestClient) -> None:
    alice, mallory = world.user("alice"), world.user("mallory")
    world.agent(client, alice, "speedy")
    # mallory writes a handshake naming herself into the bucket she cannot own on the Hub;
    # in any case the binding stands
    response = client.post("/v1/agents", json={"agent_id": "speedy"}, headers=auth(mallory))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "AGENT_TAKEN"


@pytest.mark.parametrize(
    ("agent_id", "code"),
    [("human", "AGENT_ID_RESERVED"), ("human-alice", "AGENT_ID_RESERVED"), ("Speedy", "AGENT_ID_INVALID"),
     ("ab", "AGENT_ID_INVALID"), ("a--b", "AGENT_ID_INVALID"), ("../x", "AGENT_ID_INVALID"),
     ("x" * 41, "AGENT_ID_INVALID"), ("ok-\n", "AGENT_ID_INVALID")],
)  # fmt: skip
def test_bad_and_reserved_ids(world: World, client: TestClient, agent_id: str, code: str) -> None:
    alice = world.user("alice")
    response = client.post("/v1/agents", json={"agent_id": agent_id}, headers=auth(alice))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


def test_missing_bucket_missing_handshake_and_forged_handshake(world: World, client: TestClient) -> None:
    alice = world.user("alice")
    missing = client.post("/v1/agents", json={"agent_id": "ghost"}, headers=auth(alice))
    assert missing.json()["error"]["code"] == "SCRATCH_BUCKET_MISSING"
    assert "acme/fast-ghost" in missing.json()["error"]["hint"]
    world.write(alice, world.bucket_of("empty"), {"notes.md": b"hi"})
    no_handshake = client.post("/v1/agents", json={"agent_id": "empty"}, headers=auth(alice))
    assert no_handshake.json()["error"]["code"] == "HANDSHAKE_MISSING"
    world.prepare_agent(alice, "forged", handshake="bob")
    forged = client.post("/v1/agents", json={"agent_id": "forged"}, headers=auth(alice))
    assert forged.json()["error"]["code"] == "HANDSHAKE_MISMATCH"
    assert "`alice`" in forged.json()["error"]["hint"]


def test_the_token_is_checked_before_anything_about_buckets(world: World, client: TestClient) -> None:
    world.record.settle()  # the start's files are written by now
    calls_before = sum(world.hub.calls.values())
    for headers in ({}, auth("hf_not_a_token"), {"Authorization": "Basic abc"}):
        response = client.post("/v1/agents", json={"agent_id": "ghost"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
        assert "bucket" not in response.text
    storage_calls = {k: v for k, v in world.hub.calls.items() if k != "whoami"}
    assert sum(storage_calls.values()) <= calls_before


def test_registrations_are_rate_limited_per_user(world: World, client: TestClient) -> None:
    alice = world.user("alice")
    for i in range(3):
        world.agent(client, alice, f"agent-{i}")
    world.prepare_agent(alice, "agent-3")
    refused = client.post("/v1/agents", json={"agent_id": "agent-3"}, headers=auth(alice))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) > 0
    # re-registering one's own agent is not a new registration
    assert client.post("/v1/agents", json={"agent_id": "agent-0"}, headers=auth(alice)).status_code == 200
