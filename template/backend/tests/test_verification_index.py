"""Manual mode: hand edits of the verification index taken in within seconds, malformed ones survived."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from backend_world import World, auth
from fastapi.testclient import TestClient
from jobs_world import wait_for

from collab_backend.context import Watch
from collab_backend.main import create_app
from collab_testing.hub import ADMIN_TOKEN

INDEX = "results/verification_status.json"
RESULT = "---\ntps: {tps}\nppl: 2.31\nmethod: m\n---\n\nwhat I did\n"


@pytest.fixture
def watched(world: World) -> World:
    world.ctx = dataclasses.replace(world.ctx, watch=Watch(index_poll_s=0.05))
    world.app = create_app(world.ctx)
    return world


@pytest.fixture
def client(watched: World) -> Iterator[TestClient]:
    with TestClient(watched.app) as client:
        yield client


def _results(world: World, client: TestClient, count: int) -> list[str]:
    token = world.user("alice")
    world.agent(client, token, "speedy")
    ids = []
    for i in range(count):
        world.write(token, world.bucket_of("speedy"), {f"r{i}.md": RESULT.format(tps=100 + i).encode()})
        posted = client.post("/v1/results", json={"agent_id": "speedy", "path": f"r{i}.md"}, headers=auth(token))
        ids.append(posted.json()["id"])
    return ids


def _edit(world: World, text: str) -> None:
    world.write(ADMIN_TOKEN, world.spec.storage.central_bucket, {INDEX: text.encode()})


def _verdict(client: TestClient, rid: str) -> str:
    return str(client.get(f"/v1/results/{rid}").json()["verdict"])


def test_a_hand_edit_is_taken_in_within_seconds_without_any_api_call(watched: World, client: TestClient) -> None:
    [rid] = _results(watched, client, 1)
    _edit(watched, json.dumps({rid: {"verdict": "invalid", "reason": "cached outputs"}}))
    wait_for(lambda: _verdict(client, rid) == "invalid", timeout=10)
    assert client.get(f"/v1/results/{rid}").json()["verdict_by"] == "human:index-file"
    board = client.get("/v1/messages", params={"channel": "results"}).json()["items"]
    assert any("@speedy" in m["body"] and "invalid" in m["body"] for m in board)
    wait_for(lambda: rid in json.loads(watched.storage.read(watched.spec.storage.central_bucket, INDEX)))


def test_a_malformed_edit_is_shown_kept_and_never_drops_a_verdict(watched: World, client: TestClient) -> None:
    first, second = _results(watched, client, 2)
    _edit(watched, '{"broken": ')
    wait_for(lambda: client.get("/v1").json()["results"]["verification"]["index_problem"] is not None, timeout=10)
    health = client.get("/v1/healthz")
    assert health.status_code == 200 and "not JSON" in health.json()["warnings"][0]
    ruled = client.put(f"/v1/results/{first}/verdict", json={"verdict": "valid"}, headers=auth(ADMIN_TOKEN))
    assert ruled.status_code == 200
    central = watched.spec.storage.central_bucket
    assert watched.storage.read(central, INDEX) == b'{"broken": '  # the organizer's text is left to fix
    _edit(watched, json.dumps({second: "invalid", "r-nope": "valid", first: {"verdict": "maybe"}}))
    wait_for(lambda: _verdict(client, second) == "invalid", timeout=10)
    assert _verdict(client, first) == "valid"  # absent or unusable in the file: the record's verdict stands
    problem = client.get("/v1").json()["results"]["verification"]["index_problem"]
    assert "2 entry(ies)" in problem and "r-nope" in problem
    written = json.loads(watched.storage.read(central, INDEX))
    assert (written[first]["verdict"], written[second]["verdict"]) == ("valid", "invalid")
