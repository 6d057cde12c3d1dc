"""Results through the API: promotion, checks, immutability, verdicts, hand edits, announcements."""

from __future__ import annotations

import json

import pytest
from backend_world import World, auth
from fastapi.testclient import TestClient

from collab_testing.hub import ADMIN_TOKEN

RESULT = """---
tps: {tps}
ppl: 2.31
method: mtp-k7
status: {status}
fingerprint: sha256:abc123
parents: {parents}
{extra}---

MTP with K=7 on the int4 checkpoint.
"""


@pytest.fixture
def alice(world: World, client: TestClient) -> str:
    token = world.user("alice")
    world.agent(client, token, "speedy")
    return token


def submit(world: World, client: TestClient, token: str, name: str, *, tps: object = 300, status: str = "agent-run",
           parents: str = "[]", extra: str = "", expect: int = 201) -> dict:  # fmt: skip
    text = RESULT.format(tps=tps, status=status, parents=parents, extra=extra)
    world.write(token, world.bucket_of("speedy"), {f"results/{name}.md": text.encode()})
    response = client.post(
        "/v1/results", json={"agent_id": "speedy", "path": f"results/{name}.md"}, headers=auth(token)
    )
    assert response.status_code == expect, response.text
    return dict(response.json())


def test_submit_list_and_rank(world: World, client: TestClient, alice: str) -> None:
    first = submit(world, client, alice, "r1", tps=300)
    assert first["verdict"] == "pending" and first["score"] == 300 and first["fingerprint"] is None  # typed: dropped
    second = submit(world, client, alice, "r2", tps=320, parents=f"[{first['id']}]")
    assert second["parents"] == [first["id"]]
    board = client.get("/v1/leaderboard").json()
    [only] = board["boards"][0]["standings"]
    assert only["result_id"] == second["id"] and only["pending"] is True
    assert [r["id"] for r in client.get("/v1/results").json()["items"]] == [second["id"], first["id"]]
    digest = client.get("/v1/digest/speedy").json()
    assert digest["leaderboard"][0]["you"][0]["result_id"] == second["id"]
    assert [r["id"] for r in digest["recent_results"]] == [second["id"], first["id"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tps": "fast"}, "`tps` must be a finite number"),
        ({"tps": ".nan"}, "`tps` holds a number that is not finite"),
        ({"tps": "true"}, "`tps` must be a finite number"),
        ({"status": "maybe"}, "`status`"),
        ({"parents": "[r-nope]"}, "unknown parent"),
        ({"extra": "track: lossy\n"}, "no tracks"),
    ],
)
def test_results_are_checked_against_the_spec(
    world: World, client: TestClient, alice: str, kwargs: dict, message: str
) -> None:
    response = submit(world, client, alice, "bad", expect=422, **kwargs)
    assert response["error"]["code"] == "VALIDATION_FAILED" and message in response["error"]["message"]


def test_missing_fingerprint_or_score(world: World, client: TestClient, alice: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {"r.md": b"---\nppl: 2.3\n---\n\nno score"})
    response = client.post("/v1/results", json={"agent_id": "speedy", "path": "r.md"}, headers=auth(alice))
    assert "missing required field(s): tps" in response.json()["error"]["message"]


def test_results_are_immutable_and_deduplicated(world: World, client: TestClient, alice: str) -> None:
    first = submit(world, client, alice, "same", tps=300)
    again = submit(world, client, alice, "same", tps=300, expect=200)
    assert again["id"] == first["id"]
    changed = submit(world, client, alice, "same", tps=999)
    assert changed["id"] != first["id"]
    assert client.get(f"/v1/results/{first['id']}").json()["score"] == 300


def test_spoofed_server_fields_in_a_result_are_overridden(world: World, client: TestClient, alice: str) -> None:
    entry = submit(world, client, alice, "spoof", extra="agent: champion\nid: r-fake\nuser: organizer\n")
    assert entry["agent"] == "speedy" and entry["id"] != "r-fake"
    world.record.settle()  # a result's file is written after its answer
    stored = world.storage.read(world.spec.storage.central_bucket, f"results/{entry['id']}-speedy.md").decode()
    assert "agent: speedy" in stored and "champion" not in stored and "user: alice" in stored


def test_verdicts_human_wins_compare_and_set_and_announcements(world: World, client: TestClient, alice: str) -> None:
    from collab_backend.services.results import set_verdict

    entry = submit(world, client, alice, "r1")
    rid = entry["id"]
    refused = client.put(f"/v1/results/{rid}/verdict", json={"verdict": "valid"}, headers=auth(alice))
    assert refused.json()["error"]["code"] == "NOT_ORGANIZER"
    decision = {"verdict": "invalid", "reason": "5% off", "expected": "pending"}
    done = client.put(f"/v1/results/{rid}/verdict", json=decision, headers=auth(ADMIN_TOKEN))
    assert done.status_code == 200 and done.json()["verdict"] == "invalid"
    stale = client.put(f"/v1/results/{rid}/verdict", json={"verdict": "valid", "expected": "pending"},
                       headers=auth(ADMIN_TOKEN))  # fmt: skip
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "VERDICT_CHANGED"
    assert set_verdict(world.ctx, rid, "valid", "verifier:jobs") is None  # a machine cannot overturn a human
    assert client.get(f"/v1/results/{rid}").json()["verdict"] == "invalid"
    announcement = client.get("/v1/messages?channel=results").json()["items"][0]
    assert announcement["author"] == "_system" and "**invalid**" in announcement["body"]
    assert client.get("/v1/inbox/speedy").json()["items"][0]["id"] == announcement["id"]
    world.record.settle()  # the files of the writes before are written
    index = json.loads(world.storage.read(world.spec.storage.central_bucket, "results/verification_status.json"))
    assert index[rid]["verdict"] == "invalid" and index[rid]["by"] == "human:organizer"
    assert client.get("/v1/leaderboard").json()["boards"][0]["standings"] == []


def test_hand_edits_of_the_verification_index_are_picked_up(world: World, client: TestClient, alice: str) -> None:
    from collab_backend.services.results import ingest_index_edits, set_verdict

    rid = submit(world, client, alice, "r1")["id"]
    set_verdict(world.ctx, rid, "valid", "verifier:jobs")
    world.record.settle()  # the files of the writes before are written
    central = world.spec.storage.central_bucket
    edited = json.loads(world.storage.read(central, "results/verification_status.json"))
    edited[rid] = {"verdict": "invalid", "reason": "re-run was 7% slower"}
    world.write(ADMIN_TOKEN, central, {"results/verification_status.json": json.dumps(edited).encode()})
    assert ingest_index_edits(world.ctx) == 1
    result = client.get(f"/v1/results/{rid}").json()
    assert result["verdict"] == "invalid" and result["verdict_by"] == "human:index-file"
    assert ingest_index_edits(world.ctx) == 0  # seen once
    assert set_verdict(world.ctx, rid, "valid", "verifier:jobs") is None


def test_the_leaderboard_is_served_in_pages(world: World, client: TestClient) -> None:
    for i in range(3):
        token = world.user(f"user{i}")
        world.agent(client, token, f"agent-{i}")
        text = RESULT.format(tps=100 + i, status="agent-run", parents="[]", extra="").encode()
        world.write(token, world.bucket_of(f"agent-{i}"), {"r.md": text})
        posted = client.post("/v1/results", json={"agent_id": f"agent-{i}", "path": "r.md"}, headers=auth(token))
        assert posted.status_code == 201
    page = client.get("/v1/leaderboard", params={"limit": 1, "offset": 1}).json()
    [board] = page["boards"]
    assert board["total"] == 3 and [s["agent"] for s in board["standings"]] == ["agent-1"]
    assert client.get("/v1/leaderboard", params={"track": "nope"}).status_code == 404
    assert client.get("/v1/leaderboard", params={"limit": 500}).status_code == 422
