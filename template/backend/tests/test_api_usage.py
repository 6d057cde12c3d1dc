"""Traces and token usage: per-agent destinations, aggregation, bounds, ownership."""

from __future__ import annotations

import pytest
from backend_world import World, auth
from fastapi.testclient import TestClient


@pytest.fixture
def alice(world: World, client: TestClient) -> str:
    token = world.user("alice")
    world.agent(client, token, "speedy")
    return token


def report(client: TestClient, token: str, **fields: object) -> dict:
    body = {"agent_id": "speedy", "model": "gemma-4-31b", "input_tokens": 1000, "output_tokens": 200, **fields}
    return dict(client.post("/v1/token-stats", json=body, headers=auth(token)).json())


def test_traces_are_copied_under_the_agent(world: World, client: TestClient, alice: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {"traces/run-1.jsonl": b'{"step": 1}\n'})
    done = client.post("/v1/traces/sync", json={"agent_id": "speedy", "source": "traces/"}, headers=auth(alice))
    assert [c["path"] for c in done.json()["copied"]] == ["traces/speedy/run-1.jsonl"]


def test_token_usage_adds_up_per_agent_and_model(world: World, client: TestClient, alice: str) -> None:
    report(client, alice)
    report(client, alice, input_tokens=500, output_tokens=50, cost_usd=0.25)
    totals = report(client, alice, model="claude-x", input_tokens=10, output_tokens=1)
    assert totals["input_tokens"] == 1510 and totals["output_tokens"] == 251 and totals["cost_usd"] == 0.25
    assert totals["models"]["gemma-4-31b"]["reports"] == 2
    ranking = client.get("/v1/token-stats").json()
    assert ranking["totals"] == {"input_tokens": 1510, "output_tokens": 251, "cost_usd": 0.25, "agents": 1}
    assert client.get("/v1/token-stats/speedy").json()["models"]["claude-x"]["input_tokens"] == 10


def test_usage_ranks_heaviest_first_in_pages(world: World, client: TestClient, alice: str) -> None:
    bob = world.user("bob")
    world.agent(client, bob, "helper")
    report(client, alice, input_tokens=5)
    client.post("/v1/token-stats", json={"agent_id": "helper", "model": "m", "input_tokens": 900, "output_tokens": 0},
                headers=auth(bob))  # fmt: skip
    assert [u["agent"] for u in client.get("/v1/token-stats").json()["items"]] == ["helper", "speedy"]
    assert [u["agent"] for u in client.get("/v1/token-stats", params={"offset": 1}).json()["items"]] == ["speedy"]


@pytest.mark.parametrize(
    "fields",
    [{"input_tokens": -1}, {"output_tokens": 10**13}, {"cost_usd": -0.5}, {"model": ""}, {"model": "a b"},
     {"model": "x" * 101}, {"input_tokens": 1.5}],
)  # fmt: skip
def test_usage_reports_are_bounded(client: TestClient, alice: str, fields: dict) -> None:
    body = {"agent_id": "speedy", "model": "m", "input_tokens": 1, "output_tokens": 1, **fields}
    response = client.post("/v1/token-stats", json=body, headers=auth(alice))
    assert response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_FAILED"


def test_reporting_for_another_users_agent_is_refused(world: World, client: TestClient, alice: str) -> None:
    mallory = world.user("mallory")
    response = client.post("/v1/token-stats", json={"agent_id": "speedy", "model": "m", "input_tokens": 1,
                                                     "output_tokens": 1}, headers=auth(mallory))  # fmt: skip
    assert response.json()["error"]["code"] == "AGENT_NOT_REGISTERED"
    assert client.get("/v1/token-stats/nobody").status_code == 404
