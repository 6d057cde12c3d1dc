"""Flags and rulings through the API on both storage adapters: scopes, the cascade, refusals, order, limits."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_world import Clock, World, auth, make_spec, serve
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from jobs_world import JOBS_YAML

from collab_backend.main import create_app
from collab_backend.record.entries import RulingEntry, VerdictEntry
from collab_backend.services.leaderboard import ruled, ruling_over
from collab_testing.hub import ADMIN_TOKEN

FP8 = {"format": "gemma-submission", "version": 1, "model": "google/x", "engine_args": {"kv_cache_dtype": "fp8"}}
PLAIN = {"format": "gemma-submission", "version": 1, "model": "google/x", "engine_args": {"dtype": "bfloat16"}}


@pytest.fixture
def rw(jw: World) -> World:
    """The conftest's jobs world, with the submission config a ruling's predicate reads."""
    jw.ctx = dataclasses.replace(jw.ctx, submission_config="submission.json")
    jw.app = create_app(jw.ctx)
    return jw


@pytest.fixture
def rc(rw: World) -> Iterator[TestClient]:
    yield from serve(rw)


@pytest.fixture
def people(rw: World, rc: TestClient) -> dict[str, str]:
    return make_people(rw, rc)


def make_people(rw: World, rc: TestClient) -> dict[str, str]:
    """alice runs `speedy` (a kv-cache fp8 submission), bob runs `steady` (a plain one)."""
    tokens = {"speedy": rw.user("alice"), "steady": rw.user("bob")}
    for agent, token in tokens.items():
        rw.agent(rc, token, agent)
        config = FP8 if agent == "speedy" else PLAIN
        rw.write(token, rw.bucket_of(agent), {"sub/submission.json": json.dumps(config).encode(), "sub/w.bin": b"w"})
    return tokens


def result(
    rw: World,
    rc: TestClient,
    token: str,
    agent: str,
    name: str,
    tps: float,
    *,
    parents: tuple[str, ...] = (),
    submission: str | None = "sub",
    expect: int = 201,
) -> Any:
    lines = [f"tps: {tps}", "ppl: 2.0", "track: lossless", f"parents: {json.dumps(list(parents))}"]
    if submission is not None:
        lines.append(f"submission: {submission}")
    text = "---\n" + "\n".join(lines) + "\n---\n\nA result.\n"
    rw.write(token, rw.bucket_of(agent), {f"results/{name}.md": text.encode()})
    response = rc.post("/v1/results", json={"agent_id": agent, "path": f"results/{name}.md"}, headers=auth(token))
    assert response.status_code == expect, response.text
    return response.json() if expect < 300 else response.json()["error"]


def rule(rc: TestClient, token: str = ADMIN_TOKEN, expect: int = 201, **body: Any) -> Any:
    response = rc.post(
        "/v1/rulings", json={"decision": "accepted", "text": "decode-only tricks are out", **body}, headers=auth(token)
    )
    assert response.status_code == expect, response.text
    return response.json() if expect < 300 else response.json()["error"]


def standings(rc: TestClient) -> list[str]:
    return [s["result_id"] for s in rc.get("/v1/leaderboard").json()["boards"][0]["standings"]]


def excluded(rc: TestClient) -> dict[str, str]:
    return {e["result_id"]: e["reason"] for e in rc.get("/v1/leaderboard").json()["excluded"]["items"]}


def rulings_channel(rc: TestClient) -> list[dict[str, Any]]:
    return list(rc.get("/v1/messages", params={"channel": "rulings"}).json()["items"])


def launch(rc: TestClient, token: str, agent: str) -> Any:
    return rc.post("/v1/jobs", json={"agent_id": agent, "submission": "sub"}, headers=auth(token))


# -- flags ----------------------------------------------------------------------------------------
def test_a_flag_is_recorded_listed_and_posted_in_the_rulings_channel(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    assert "rulings" in [c["name"] for c in rc.get("/v1/channels").json()["items"]]
    flagged = result(rw, rc, people["speedy"], "speedy", "r1", 300)
    body = {"agent_id": "steady", "result": flagged["id"], "reason": "perplexity is blind to decode-only tricks"}
    response = rc.post("/v1/flags", json=body, headers=auth(people["steady"]))
    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["target"], made["subject"], made["status"], made["agent"]) == (
        "result",
        flagged["id"],
        "open",
        "steady",
    )
    [post] = rulings_channel(rc)
    assert post["author"] == "steady" and made["id"] in post["body"] and post["mentions"] == ["speedy"]
    assert "perplexity is blind" in post["body"]
    listed = rc.get("/v1/flags").json()["items"]
    assert [f["id"] for f in listed] == [made["id"]]
    technique = {"agent_id": "steady", "technique": "vocabulary pruned to the public prompts", "reason": "overfits"}
    assert rc.post("/v1/flags", json=technique, headers=auth(people["steady"])).status_code == 201
    assert [f["target"] for f in rc.get("/v1/flags").json()["items"]] == ["technique", "result"]
    page = rc.get("/v1/flags", params={"limit": 1}).json()
    assert page["items"][0]["target"] == "technique" and page["next"] == page["items"][0]["id"]
    rest = rc.get("/v1/flags", params={"limit": 1, "before": page["next"]}).json()
    assert [f["id"] for f in rest["items"]] == [made["id"]] and rest["next"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reason": "r"}, 422, "VALIDATION_FAILED"),  # names nothing
        ({"technique": "t", "fingerprint": "sha256:" + "a" * 64, "reason": "r"}, 422, "VALIDATION_FAILED"),  # two
        ({"fingerprint": "abc", "reason": "r"}, 422, "VALIDATION_FAILED"),
        ({"result": "r-none", "reason": "r"}, 404, "NOT_FOUND"),
        ({"technique": "t", "reason": "   "}, 422, "VALIDATION_FAILED"),
        ({"technique": "x" * 201, "reason": "r"}, 422, "VALIDATION_FAILED"),
    ],
)
def test_a_bad_flag_is_refused_with_what_is_wrong(
    rc: TestClient, people: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    response = rc.post("/v1/flags", json={"agent_id": "steady", **body}, headers=auth(people["steady"]))
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert rc.get("/v1/flags").json()["items"] == []


def test_flags_are_rate_limited_per_agent_as_raw_posts(rc: TestClient, people: dict[str, str], clock: Clock) -> None:
    body = {"agent_id": "steady", "technique": "a trick", "reason": "r"}
    for _ in range(5):  # the spec's raw_posts: 5 per 60 s
        assert rc.post("/v1/flags", json=body, headers=auth(people["steady"])).status_code == 201
    refused = rc.post("/v1/flags", json=body, headers=auth(people["steady"]))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMITED"
    assert "Retry-After" in refused.headers
    other = {"agent_id": "speedy", "technique": "a trick", "reason": "r"}
    assert rc.post("/v1/flags", json=other, headers=auth(people["speedy"])).status_code == 201  # per agent
    clock.now += 61
    assert rc.post("/v1/flags", json=body, headers=auth(people["steady"])).status_code == 201
    assert len(rc.get("/v1/flags", params={"agent": "steady"}).json()["items"]) == 6


def test_a_flag_for_an_agent_of_someone_else_is_refused(rc: TestClient, people: dict[str, str]) -> None:
    body = {"agent_id": "speedy", "technique": "t", "reason": "r"}
    response = rc.post("/v1/flags", json=body, headers=auth(people["steady"]))
    assert response.status_code == 403 and response.json()["error"]["code"] == "AGENT_NOT_REGISTERED"


# -- who rules --------------------------------------------------------------------------------------
def test_a_participant_cannot_rule(rw: World, rc: TestClient, people: dict[str, str]) -> None:
    mine = result(rw, rc, people["speedy"], "speedy", "r1", 300)
    error = rule(rc, people["steady"], expect=403, scope={"results": [mine["id"]]})
    assert error["code"] == "NOT_ORGANIZER" and "POST /v1/flags" in error["hint"]
    assert rc.get("/v1/rulings").json()["items"] == [] and standings(rc) == [mine["id"]]


# -- scopes, with the cascade -----------------------------------------------------------------------
def test_a_ruling_by_list_invalidates_the_result_and_its_descendants_and_answers_the_flag(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    root = result(rw, rc, people["speedy"], "speedy", "root", 300, submission=None)
    child = result(rw, rc, people["steady"], "steady", "child", 320, parents=(root["id"],), submission=None)
    other = result(rw, rc, people["steady"], "steady", "other", 250, submission=None)
    flag = rc.post(
        "/v1/flags",
        json={"agent_id": "steady", "result": root["id"], "reason": "cached outputs"},
        headers=auth(people["steady"]),
    ).json()
    ruling = rule(rc, answers=[flag["id"]], scope={"results": [root["id"]]})
    assert ruling["covers"] == [root["id"]] and ruling["in_force"] and ruling["answers"] == [flag["id"]]
    assert standings(rc) == [other["id"]]
    reasons = excluded(rc)
    assert reasons[root["id"]] == f"ruled out by {ruling['id']}"
    assert reasons[child["id"]] == "descends from an invalid result"
    shown = rc.get(f"/v1/results/{root['id']}").json()
    assert (shown["verdict"], shown["verdict_by"]) == ("invalid", f"ruling:{ruling['id']}")
    nodes = {n["id"]: n for n in rc.get("/v1/lineage").json()["items"]}
    assert nodes[child["id"]]["invalid_ancestor"] == root["id"]
    announced = rulings_channel(rc)[0]
    assert announced["role"] == "organizer" and ruling["id"] in announced["body"]
    assert set(announced["mentions"]) == {"speedy", "steady"}  # the owners (root, child) and the flagger
    assert f"{child['id']} (@steady)" in announced["body"]
    [answered] = rc.get("/v1/flags").json()["items"]
    assert (answered["status"], answered["rulings"]) == ("answered", [ruling["id"]])
    assert rc.get(f"/v1/rulings/{ruling['id']}").json() == ruling
    assert rc.get("/v1/rulings").json()["items"] == [ruling]


def test_a_ruling_by_fingerprint_covers_every_result_of_it_and_refuses_new_launches_and_results(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    first = result(rw, rc, people["speedy"], "speedy", "a", 300)
    second = result(rw, rc, people["speedy"], "speedy", "b", 301)  # the same folder: the same fingerprint
    kept = result(rw, rc, people["steady"], "steady", "c", 200)
    assert first["fingerprint"] == second["fingerprint"] != kept["fingerprint"]
    ruling = rule(rc, text="this checkpoint ships cached outputs", scope={"fingerprints": [first["fingerprint"]]})
    assert sorted(ruling["covers"]) == sorted([first["id"], second["id"]])
    assert standings(rc) == [kept["id"]]
    refused = launch(rc, people["speedy"], "speedy")
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "RULED_OUT" and ruling["id"] in error["message"] and "cached outputs" in error["message"]
    assert f"GET /v1/rulings/{ruling['id']}" in error["hint"]
    again = result(rw, rc, people["speedy"], "speedy", "d", 302, expect=403)
    assert again["code"] == "RULED_OUT" and ruling["id"] in again["message"]
    assert launch(rc, people["steady"], "steady").status_code == 201
    rw.write(people["speedy"], rw.bucket_of("speedy"), {"sub/w.bin": b"other weights"})  # another fingerprint
    assert launch(rc, people["speedy"], "speedy").status_code == 201


def test_a_ruling_by_predicate_covers_matching_configs_and_refuses_matching_launches(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    fp8 = result(rw, rc, people["speedy"], "speedy", "a", 300)
    child = result(rw, rc, people["steady"], "steady", "child", 310, parents=(fp8["id"],), submission=None)
    plain = result(rw, rc, people["steady"], "steady", "b", 200)
    predicate = {"field": "engine_args.kv_cache_dtype", "op": "in", "value": ["fp8", "fp8_e5m2"]}
    ruling = rule(rc, text="fp8 KV cache is lossy here", scope={"predicate": predicate})
    assert ruling["covers"] == [fp8["id"]] and ruling["scope"]["predicate"] == predicate
    assert standings(rc) == [plain["id"]] and child["id"] in excluded(rc)
    refused = launch(rc, people["speedy"], "speedy")
    assert refused.status_code == 403 and ruling["id"] in refused.json()["error"]["message"]
    assert "fp8 KV cache is lossy here" in refused.json()["error"]["message"]
    assert launch(rc, people["steady"], "steady").status_code == 201
    assert "engine_args.kv_cache_dtype" in rulings_channel(rc)[0]["body"]
    # the submission changed so that the predicate no longer holds: it may run
    changed = {**FP8, "engine_args": {"kv_cache_dtype": "auto"}}
    rw.write(people["speedy"], rw.bucket_of("speedy"), {"sub/submission.json": json.dumps(changed).encode()})
    assert launch(rc, people["speedy"], "speedy").status_code == 201


def test_a_run_request_on_a_ruled_out_folder_is_refused_as_its_launch_would_be(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    predicate = {"field": "engine_args.kv_cache_dtype", "op": "in", "value": ["fp8", "fp8_e5m2"]}
    ruling = rule(rc, text="fp8 KV cache is lossy here", scope={"predicate": predicate})
    body = {"submission": "sub", "what": "w", "why": "y"}
    refused = rc.post("/v1/run-requests", json={"agent_id": "speedy", **body}, headers=auth(people["speedy"]))
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "RULED_OUT" and ruling["id"] in error["message"]
    assert rc.get("/v1/run-requests").json()["items"] == []  # nothing a sponsor could claim and fail to launch
    plain = rc.post("/v1/run-requests", json={"agent_id": "steady", **body}, headers=auth(people["steady"]))
    assert plain.status_code == 201, plain.text


@pytest.mark.parametrize(
    ("predicate", "words"),
    [
        ({"field": "engine_args.x", "op": "matches", "value": "x"}, "unknown op"),
        ({"field": "engine_args..x", "op": "set"}, "is not a path"),
        ({"field": "engine_args.x", "op": "set", "value": 1}, "takes no `value`"),
        ({"field": "engine_args.x", "op": "in", "value": "fp8"}, "a list of 1 to"),
        ({"field": "engine_args.x", "op": "equals"}, "needs a `value`"),
        ({"op": "set"}, "`field`"),
        ({"field": "a", "op": "set", "extra": 1}, "unknown key"),
    ],
)
def test_a_bad_predicate_is_refused_with_a_hint(
    rc: TestClient, people: dict[str, str], predicate: dict[str, Any], words: str
) -> None:
    error = rule(rc, expect=400, scope={"predicate": predicate})
    assert error["code"] == "PREDICATE_INVALID" and words in error["message"] and error["hint"]
    assert rc.get("/v1/rulings").json()["items"] == []


def test_without_a_submission_config_a_predicate_is_refused(storage_kind: str, tmp_path: Path, clock: Clock) -> None:
    world = World(storage_kind, tmp_path, make_spec(JOBS_YAML), clock)  # the type names no config file
    with TestClient(world.app, raise_server_exceptions=False) as client:
        error = rule(client, expect=400, scope={"predicate": {"field": "a", "op": "set"}})
        assert error["code"] == "PREDICATE_INVALID" and "no submission config" in error["message"]
        assert client.get("/v1").json()["rulings"]["predicate"] is None


# -- order: rulings, human verdicts, revocation ------------------------------------------------------
def test_a_later_human_verdict_wins_over_a_ruling_and_a_later_ruling_over_a_verdict(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    a = result(rw, rc, people["speedy"], "speedy", "a", 300, submission=None)
    b = result(rw, rc, people["steady"], "steady", "b", 200, submission=None)
    valid = {"verdict": "valid", "reason": "checked by hand"}
    assert rc.put(f"/v1/results/{b['id']}/verdict", json=valid, headers=auth(ADMIN_TOKEN)).status_code == 200
    first = rule(rc, scope={"results": [a["id"], b["id"]]})
    assert standings(rc) == []  # the ruling came after b's verdict: it wins
    assert rc.put(f"/v1/results/{a['id']}/verdict", json=valid, headers=auth(ADMIN_TOKEN)).status_code == 200
    assert standings(rc) == [a["id"]]  # a human verdict after the ruling: the exception for that result
    stale = rc.put(f"/v1/results/{b['id']}/verdict", json={**valid, "expected": "valid"}, headers=auth(ADMIN_TOKEN))
    assert stale.status_code == 409 and "now 'invalid'" in stale.json()["error"]["message"]  # what the API showed
    again = rc.put(f"/v1/results/{b['id']}/verdict", json={**valid, "expected": "invalid"}, headers=auth(ADMIN_TOKEN))
    assert again.status_code == 200 and again.json()["verdict"] == "valid"  # the same verdict again: written anew
    assert sorted(standings(rc)) == sorted([a["id"], b["id"]])
    third = rule(rc, scope={"results": [b["id"]]})  # a later ruling wins over that verdict again
    assert (
        standings(rc) == [a["id"]] and rc.get(f"/v1/results/{b['id']}").json()["verdict_by"] == f"ruling:{third['id']}"
    )
    revoking = rule(rc, decision="rejected", text="on review, b was fine", revokes=[first["id"], third["id"]])
    assert revoking["covers"] == [] and sorted(standings(rc)) == sorted([a["id"], b["id"]])
    listed = {r["id"]: r for r in rc.get("/v1/rulings").json()["items"]}
    assert listed[first["id"]]["revoked_by"] == revoking["id"] and not listed[first["id"]]["in_force"]
    assert "revokes" in rulings_channel(rc)[0]["body"]


def test_a_rejected_ruling_answers_flags_and_invalidates_nothing(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    a = result(rw, rc, people["speedy"], "speedy", "a", 300)
    flag = rc.post(
        "/v1/flags",
        json={"agent_id": "steady", "result": a["id"], "reason": "suspicious"},
        headers=auth(people["steady"]),
    ).json()
    ruling = rule(
        rc, decision="rejected", text="measured twice: fine", answers=[flag["id"]], scope={"results": [a["id"]]}
    )
    assert ruling["covers"] == [] and not ruling["in_force"] and standings(rc) == [a["id"]]
    assert launch(rc, people["speedy"], "speedy").status_code == 201
    assert rc.get("/v1/flags").json()["items"][0]["status"] == "answered"
    assert "@steady" in rulings_channel(rc)[0]["body"]


def test_a_ruling_naming_unknown_things_is_refused(rc: TestClient, people: dict[str, str]) -> None:
    assert rule(rc, expect=422, scope={"results": ["r-none"]})["code"] == "VALIDATION_FAILED"
    assert rule(rc, expect=422, scope={"fingerprints": ["md5:x"]})["code"] == "VALIDATION_FAILED"
    assert rule(rc, expect=422, answers=["flag-none"])["code"] == "VALIDATION_FAILED"
    assert rule(rc, expect=422, revokes=["ruling-none"])["code"] == "VALIDATION_FAILED"
    assert rule(rc, expect=422, text=" ")["code"] == "VALIDATION_FAILED"
    assert rc.get("/v1/rulings/ruling-none").status_code == 404


def test_rulings_survive_a_restart(rw: World) -> None:
    with TestClient(rw.app) as client:
        people = make_people(rw, client)
        a = result(rw, client, people["speedy"], "speedy", "a", 300)
        ruling = rule(client, scope={"results": [a["id"]]})
    rw.restarted()
    with TestClient(rw.app) as client:
        assert standings(client) == [] and client.get("/v1/rulings").json()["items"][0]["id"] == ruling["id"]
        assert (
            client.post(
                "/v1/jobs", json={"agent_id": "speedy", "submission": "sub"}, headers=auth(people["speedy"])
            ).status_code
            == 201
        )  # listed results: no launch refused
        files = rw.storage.list(rw.spec.storage.central_bucket, "rulings/", limit=10).items
        assert f"rulings/{ruling['id']}.md" in [f.path for f in files]


def test_get_v1_describes_flags_and_rulings(rc: TestClient) -> None:
    described = rc.get("/v1").json()["rulings"]
    assert described["channel"] == "rulings" and described["predicate"]["config"] == "submission.json"
    assert "rulings" in rc.get("/v1").json()["channels"]["declared"]  # the kit's channel every collab has
    assert "POST /v1/flags" in described["flag"] and "revoke" in described["order"]


# -- the order, as a pure function ------------------------------------------------------------------
EVENT = st.tuples(st.sampled_from(["human", "machine", "accept", "reject", "revoke"]), st.sets(st.sampled_from("abc")))


@given(events=st.lists(EVENT, max_size=8))
@settings(max_examples=200, deadline=None)
def test_the_latest_of_a_human_verdict_and_an_accepted_ruling_in_force_decides(
    events: list[tuple[str, set[str]]],
) -> None:
    """`ruled` (the ranking's view) and `ruling_over` (what a verdict change compares with) agree with the rule."""
    verdicts: dict[str, VerdictEntry] = {}
    rulings: list[RulingEntry] = []
    for seq, (kind, ids) in enumerate(events, start=1):
        if kind in ("human", "machine"):
            for rid in sorted(ids):
                verdicts[rid] = VerdictEntry(seq, 0.0, rid, "valid", f"{kind}:x" if kind == "human" else "verifier:x")
        else:
            revokes = tuple(r.id for r in rulings) if kind == "revoke" else ()
            decision = "rejected" if kind == "reject" else "accepted"
            rulings.append(RulingEntry(seq, 0.0, f"ruling-{seq}", "human:o", decision, "t", covers=tuple(sorted(ids)),
                                       revokes=revokes))  # fmt: skip
    effective = ruled(verdicts, rulings)
    revoked = {rid for r in rulings for rid in r.revokes}
    for rid in "abc":
        standing = [r for r in rulings if r.decision == "accepted" and r.id not in revoked and rid in r.covers]
        own = verdicts.get(rid)
        later_human = own is not None and own.human and (not standing or own.seq > standing[-1].seq)
        expected = None if not standing or later_human else standing[-1]
        assert ruling_over(rid, own, rulings) == expected
        if expected is None:
            assert effective.get(rid) == own
        else:
            assert (effective[rid].verdict, effective[rid].by) == ("invalid", f"ruling:{expected.id}")
