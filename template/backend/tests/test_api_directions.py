"""Directions through the API: declared in the spec, opened by agents, named by results and posts, mapped, nudged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_world import SPEC_YAML, Clock, World, auth, make_spec, serve
from fastapi.testclient import TestClient

from collab_backend.services.directions import FEW, NUDGE, QUIET_SECONDS

DIRECTIONS = """\
directions:
  - {name: kernels, description: Custom attention and GEMM kernels}
  - {name: quantization, description: int4 and below}
  - {name: engine, description: Scheduler and engine changes}
"""
RESULT = "---\ntps: {tps}\ndirection: {direction}\nparents: {parents}\n---\n\nwhat I did\n"


@pytest.fixture
def dw(storage_kind: str, tmp_path: Path, clock: Clock) -> World:
    return World(storage_kind, tmp_path, make_spec(SPEC_YAML + DIRECTIONS), clock)


@pytest.fixture
def dc(dw: World) -> Iterator[TestClient]:
    yield from serve(dw)


@pytest.fixture
def alice(dw: World, dc: TestClient) -> str:
    token = dw.user("alice")
    dw.agent(dc, token, "speedy")
    return token


def submit(dw: World, dc: TestClient, token: str, name: str, tps: float, direction: str, parents: str = "[]",
           expect: int = 201) -> dict:  # fmt: skip
    text = RESULT.format(tps=tps, direction=direction, parents=parents)
    dw.write(token, dw.bucket_of("speedy"), {f"results/{name}.md": text.encode()})
    response = dc.post("/v1/results", json={"agent_id": "speedy", "path": f"results/{name}.md"}, headers=auth(token))
    assert response.status_code == expect, response.text
    return dict(response.json())


def by_name(dc: TestClient) -> dict[str, dict]:
    return {d["name"]: d for d in dc.get("/v1/directions").json()["directions"]}


def test_declared_directions_count_results_posts_agents_and_the_best_figure(
    dw: World, dc: TestClient, alice: str, clock: Clock
) -> None:
    assert list(by_name(dc)) == ["kernels", "quantization", "engine"]  # the spec's, in its order
    first = submit(dw, dc, alice, "r1", 100, "kernels")
    assert first["direction"] == "kernels"
    clock.now += 60
    submit(dw, dc, alice, "r2", 140, "kernels", parents=f"[{first['id']}]")
    submit(dw, dc, alice, "r3", 90, "quantization")
    post = dc.post("/v1/messages", json={"agent_id": "speedy", "body": "tried split-K", "direction": "kernels"},
                   headers=auth(alice))  # fmt: skip
    assert post.status_code == 201 and post.json()["direction"] == "kernels"
    human = dc.post(
        "/v1/messages", json={"body": "an idea", "direction": "engine"}, headers=auth(dw.user("org", "admin"))
    )
    assert human.status_code == 201, human.text
    rows = by_name(dc)
    kernels = rows["kernels"]
    assert (kernels["results"], kernels["posts"], kernels["agents"], kernels["agent_count"]) == (2, 1, ["speedy"], 1)
    assert kernels["best"]["score"] == 140 and kernels["best"]["agent"] == "speedy"
    assert kernels["open_run_requests"] == 0 and kernels["opened_by"] == "_organizers"
    assert kernels["last_activity"] >= kernels["last_result"]
    assert (rows["engine"]["results"], rows["engine"]["posts"], rows["engine"]["best"]) == (0, 1, None)
    # the result file in the central bucket keeps the direction it named
    assert dc.get(f"/v1/results/{first['id']}").json()["direction"] == "kernels"


def test_an_invalid_result_gives_its_direction_no_best_figure(dw: World, dc: TestClient, alice: str) -> None:
    bad = submit(dw, dc, alice, "r1", 500, "engine")
    organizer = dw.user("org", "admin")
    verdict = dc.put(f"/v1/results/{bad['id']}/verdict", json={"verdict": "invalid", "reason": "decode-only trick"},
                     headers=auth(organizer))  # fmt: skip
    assert verdict.status_code == 200, verdict.text
    engine = by_name(dc)["engine"]
    assert (engine["results"], engine["best"]) == (1, None)  # counted, but it cannot rank: no figure


def test_unknown_directions_are_refused_with_the_list(dw: World, dc: TestClient, alice: str) -> None:
    refused = submit(dw, dc, alice, "r1", 100, "kernal", expect=404)["error"]
    assert refused["code"] == "DIRECTION_UNKNOWN" and "'kernal'" in refused["message"]
    assert "kernels, quantization, engine" in refused["hint"]
    post = dc.post("/v1/messages", json={"agent_id": "speedy", "body": "x", "direction": "nope"}, headers=auth(alice))
    assert post.status_code == 404 and post.json()["error"]["code"] == "DIRECTION_UNKNOWN"
    text = b"---\ndirection: [kernels]\n---\n\nnot a name\n"
    dw.write(alice, dw.bucket_of("speedy"), {"posts/p.md": text})
    promoted = dc.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "posts/p.md"}, headers=auth(alice))
    assert promoted.status_code == 404 and promoted.json()["error"]["code"] == "DIRECTION_UNKNOWN"


def test_agents_open_directions_with_the_channel_naming_rules(dw: World, dc: TestClient, alice: str) -> None:
    opened = dc.post("/v1/directions", json={"agent_id": "speedy", "name": "spec-decode", "description": "drafters"},
                     headers=auth(alice))  # fmt: skip
    assert opened.status_code == 201 and opened.json()["opened_by"] == "speedy"
    again = dc.post("/v1/directions", json={"agent_id": "speedy", "name": "spec-decode"}, headers=auth(alice))
    assert again.status_code == 409 and again.json()["error"]["code"] == "DIRECTION_EXISTS"
    for bad in ("Spec", "a--b", "-x", "x" * 33):
        response = dc.post("/v1/directions", json={"agent_id": "speedy", "name": bad}, headers=auth(alice))
        assert response.status_code == 422, bad
    assert submit(dw, dc, alice, "r1", 100, "spec-decode")["direction"] == "spec-decode"
    assert by_name(dc)["spec-decode"]["results"] == 1
    stranger = dc.post("/v1/directions", json={"agent_id": "speedy", "name": "other"}, headers=auth(dw.user("eve")))
    assert stranger.status_code == 403


def test_the_digest_nudges_toward_directions_with_few_results_or_none_recently(
    dw: World, dc: TestClient, alice: str, clock: Clock
) -> None:
    for i in range(FEW):
        submit(dw, dc, alice, f"k{i}", 100 + i, "kernels")
    submit(dw, dc, alice, "q0", 100, "quantization")
    nudge = dc.get("/v1/digest/speedy").json()["directions"]["nudge"]
    assert [n["name"] for n in nudge] == ["engine", "quantization"]  # kernels has enough, and recent ones
    assert nudge[0]["why"] == "0 result(s)" and len(nudge) <= NUDGE
    clock.now += QUIET_SECONDS + 1  # a day without a result: kernels is quiet now, and comes last (most results)
    names = [n["name"] for n in dc.get("/v1/digest/speedy").json()["directions"]["nudge"]]
    assert names == ["engine", "quantization", "kernels"]
    for name in ("a1", "a2"):
        dc.post("/v1/directions", json={"agent_id": "speedy", "name": name}, headers=auth(alice))
    assert len(dc.get("/v1/digest/speedy").json()["directions"]["nudge"]) == NUDGE  # bounded


def test_get_v1_describes_directions_and_credit(dc: TestClient) -> None:
    described = dc.get("/v1").json()
    assert described["directions"]["declared"] == ["kernels", "quantization", "engine"]
    assert "1/4" in described["credit"]["rule"] and described["credit"]["ledger"] == "GET /v1/credit"
    assert "never counts" in described["credit"]["proxy_view"] and "?view=proxy" in described["credit"]["proxy_view"]


def test_directions_and_what_names_them_outlive_a_restart(dw: World, dc: TestClient, alice: str) -> None:
    dc.post("/v1/directions", json={"agent_id": "speedy", "name": "spec-decode"}, headers=auth(alice))
    submit(dw, dc, alice, "r1", 100, "spec-decode")
    before = by_name(dc)
    with TestClient(dw.restarted().app) as again:
        after = {d["name"]: d for d in again.get("/v1/directions").json()["directions"]}
        assert after == before and list(after) == ["kernels", "quantization", "engine", "spec-decode"]
        assert again.get("/v1/credit").json()["total"] == 0  # one claim, unverified: no credit
    central = dw.spec.storage.central_bucket
    assert "directions/spec-decode.json" in dw.storage.stat(central, ["directions/spec-decode.json"])
