"""The challenge type's standing rules (its denylist, seeded with the harness): listed, and refusing launches."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_world import Clock, World, auth, documented_statuses, make_spec
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from jobs_world import JOBS_YAML, ScriptedLauncher, bundled_type, seed_harness, with_launcher

from collab_backend.main import create_app
from collab_backend.services import predicates
from collab_backend.services.denylist import parse
from collab_testing.hub import ADMIN_TOKEN

DENYLIST = "gemma_eval/denied.json"
DOC = {
    "format": "denylist",
    "version": 1,
    "names": {
        "engine_args": {"trust_remote_code": "it would run code from a model repository"},
        "engine_args.attention_config": {"use_non_causal": "bidirectional attention"},
    },
    "values": {
        "kv_cache_dtype": {
            "fields": ["engine_args.kv_cache_dtype", "speculative_config.kv_cache_dtype"],
            "denied": {"fp8_inc": "the fp8 KV cache of Intel Gaudi accelerators"},
        },
        "kv_cache_spec_kind": {
            "fields": [],
            "keys_of": ["engine_args.attention_config.backend_per_kind"],
            "denied": {"mamba": "another model family"},
        },
    },
}
BASE = {"format": "gemma-submission", "version": 1, "model": "google/x"}


def world_with(storage_kind: str, tmp_path: Path, clock: Clock, denylist: str | None, doc: Any = DOC) -> World:
    world = with_launcher(World(storage_kind, tmp_path, make_spec(JOBS_YAML), clock), ScriptedLauncher())
    world.ctx = dataclasses.replace(world.ctx, submission_config="submission.json", denylist=denylist)
    world.app = create_app(world.ctx)
    seed_harness(world, extra={DENYLIST: json.dumps(doc).encode()} if doc is not None else None)
    return world


@pytest.fixture
def sw(storage_kind: str, tmp_path: Path, clock: Clock) -> World:
    return world_with(storage_kind, tmp_path, clock, DENYLIST)


@pytest.fixture
def sc(sw: World) -> Iterator[TestClient]:
    with TestClient(sw.app, raise_server_exceptions=False) as client:
        client.event_hooks["response"].append(documented_statuses(sw.app))
        yield client


def submit(world: World, client: TestClient, config: dict[str, Any], agent: str = "speedy") -> Any:
    """Register `agent` (once), write `sub/` with this config, and launch a job on it."""
    if "hf_alice_token" not in world.tokens:
        world.agent(client, world.user("alice"), agent)
    token = "hf_alice_token"
    world.write(token, world.bucket_of(agent), {"sub/submission.json": json.dumps(config).encode(), "sub/w": b"w"})
    return client.post("/v1/jobs", json={"agent_id": agent, "submission": "sub"}, headers=auth(token))


def test_the_types_standing_rules_are_listed_in_the_rulings_vocabulary(sc: TestClient) -> None:
    listed = sc.get("/v1/rulings/standing").json()
    assert listed["source"] == f"harness/{DENYLIST}" and listed["problem"] is None
    rules = {r["id"]: r for r in listed["items"]}
    assert sorted(rules) == [
        "type:engine_args.attention_config.backend_per_kind.mamba",
        "type:engine_args.attention_config.use_non_causal",
        "type:engine_args.kv_cache_dtype=fp8_inc",
        "type:engine_args.trust_remote_code",
        "type:speculative_config.kv_cache_dtype=fp8_inc",
    ]
    trust = rules["type:engine_args.trust_remote_code"]
    assert trust["standing"] is True and trust["in_force"] is True
    assert trust["text"] == "it would run code from a model repository"
    assert trust["scope"]["predicate"] == {"field": "engine_args.trust_remote_code", "op": "set"}
    fp8 = rules["type:engine_args.kv_cache_dtype=fp8_inc"]["scope"]["predicate"]
    assert fp8 == {"field": "engine_args.kv_cache_dtype", "op": "equals", "value": "fp8_inc"}
    assert sc.get("/v1/rulings/type:engine_args.trust_remote_code").json() == trust
    assert [r["id"] for r in sc.get("/v1/rulings/standing", params={"field": "speculative"}).json()["items"]] == [
        "type:speculative_config.kv_cache_dtype=fp8_inc"
    ]
    assert sc.get("/v1/rulings/type:engine_args.nothing").json()["error"]["code"] == "NOT_FOUND"
    assert sc.get("/v1/rulings").json()["items"] == []  # the organizers' rulings are their own list
    assert "GET /v1/rulings/standing" in sc.get("/v1").json()["rulings"]["standing"]


@pytest.mark.parametrize(
    ("config", "rule_id"),
    [
        ({"engine_args": {"trust_remote_code": False}}, "type:engine_args.trust_remote_code"),
        ({"engine_args": {"kv_cache_dtype": "fp8_inc"}}, "type:engine_args.kv_cache_dtype=fp8_inc"),
        ({"speculative_config": {"kv_cache_dtype": "fp8_inc"}}, "type:speculative_config.kv_cache_dtype=fp8_inc"),
        (
            {"engine_args": {"attention_config": {"backend_per_kind": {"mamba": "FLASH_ATTN"}}}},
            "type:engine_args.attention_config.backend_per_kind.mamba",
        ),
    ],
)
def test_a_launch_matching_a_standing_rule_is_refused_with_its_id(
    sw: World, sc: TestClient, config: dict[str, Any], rule_id: str
) -> None:
    refused = submit(sw, sc, {**BASE, **config})
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert (
        error["code"] == "RULED_OUT" and rule_id in error["message"] and f"GET /v1/rulings/{rule_id}" in error["hint"]
    )
    assert sc.get("/v1/jobs", params={"agent": "speedy"}).json()["items"] == []  # no job was spent on it
    allowed = submit(sw, sc, {**BASE, "engine_args": {"kv_cache_dtype": "fp8"}})  # not on the list: it runs
    assert allowed.status_code == 201, allowed.text


def test_a_run_request_matching_a_standing_rule_is_refused_before_anyone_sponsors_it(sw: World, sc: TestClient) -> None:
    submit(sw, sc, {**BASE, "engine_args": {"trust_remote_code": True}})
    body = {"agent_id": "speedy", "submission": "sub", "what": "w", "why": "y"}
    refused = sc.post("/v1/run-requests", json=body, headers=auth("hf_alice_token"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "RULED_OUT"
    assert "type:engine_args.trust_remote_code" in refused.json()["error"]["message"]
    assert sc.get("/v1/run-requests").json()["items"] == []


def test_an_organizers_ruling_extends_the_standing_rules(sw: World, sc: TestClient) -> None:
    fp8 = {**BASE, "engine_args": {"kv_cache_dtype": "fp8"}}
    assert submit(sw, sc, fp8).status_code == 201
    predicate = {"field": "engine_args.kv_cache_dtype", "op": "equals", "value": "fp8"}
    ruling = sc.post(
        "/v1/rulings",
        json={"decision": "accepted", "text": "fp8 KV is lossy here", "scope": {"predicate": predicate}},
        headers=auth(ADMIN_TOKEN),
    ).json()
    refused = submit(sw, sc, fp8).json()["error"]
    assert refused["code"] == "RULED_OUT" and ruling["id"] in refused["message"]
    assert len(sc.get("/v1/rulings/standing").json()["items"]) == 5  # the standing rules stay as seeded


def test_a_reseeded_denylist_is_read_again_and_a_broken_one_refuses_nothing(sw: World, sc: TestClient) -> None:
    grown = {**DOC, "names": {**DOC["names"], "speculative_config": {"code_revision": "remote code is not allowed"}}}
    seed_harness(sw, extra={DENYLIST: json.dumps(grown).encode()})
    ids = [r["id"] for r in sc.get("/v1/rulings/standing").json()["items"]]
    assert "type:speculative_config.code_revision" in ids
    seed_harness(sw, extra={DENYLIST: b"{not json"})
    broken = sc.get("/v1/rulings/standing").json()
    assert broken["items"] == [] and "is not JSON" in broken["problem"]
    assert (
        submit(sw, sc, {**BASE, "engine_args": {"trust_remote_code": True}}).status_code == 201
    )  # the harness refuses


def test_a_type_without_a_denylist_shows_none(storage_kind: str, tmp_path: Path, clock: Clock) -> None:
    """A TSP collab names no denylist: no standing rules, and launches are left to the rulings."""
    world = world_with(storage_kind, tmp_path, clock, None)
    with TestClient(world.app, raise_server_exceptions=False) as client:
        assert client.get("/v1/rulings/standing").json() == {"source": None, "problem": None, "count": 0, "items": []}
        assert client.get("/v1").json()["rulings"]["standing"] is None
        assert submit(world, client, {**BASE, "engine_args": {"trust_remote_code": True}}).status_code == 201


def test_a_missing_denylist_is_named(storage_kind: str, tmp_path: Path, clock: Clock) -> None:
    world = world_with(storage_kind, tmp_path, clock, DENYLIST, doc=None)
    with TestClient(world.app, raise_server_exceptions=False) as client:
        listed = client.get("/v1/rulings/standing").json()
        assert listed["items"] == [] and "not in the central bucket" in listed["problem"]


def test_the_gemma_denylist_is_all_rules_and_classifies_its_examples() -> None:
    """The Gemma harness's own denied.json: every entry a predicate; its refused examples match, its valid ones not."""
    gemma = bundled_type("gemma")
    assert gemma.denylist == DENYLIST  # type: ignore[attr-defined]
    doc = json.loads((gemma.harness_dir / DENYLIST).read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    rules, problems = parse(doc)
    assert problems == []
    names = sum(len(table) for table in doc["names"].values())
    values = sum(len(e["denied"]) * (len(e["fields"]) + len(e.get("keys_of", []))) for e in doc["values"].values())
    assert len(rules) == names + values > 400
    examples = gemma.examples_dir  # type: ignore[attr-defined]

    def hits(kind: str, name: str) -> set[str]:
        config = json.loads((examples / kind / name / "submission.json").read_text(encoding="utf-8"))
        return {r.id for r in rules if predicates.matches(r.predicate, config)}

    for valid in ("bf16_baseline", "int4_qat", "int4_qat_mtp"):
        assert hits("valid", valid) == set()
    assert hits("invalid", "unlisted_engine_arg") == {
        "type:engine_args.hf_overrides",
        "type:engine_args.logits_processors",
    }
    assert hits("invalid", "relaxed_acceptance") == {
        "type:speculative_config.rejection_sample_method=synthetic",
        "type:speculative_config.synthetic_acceptance_rates",
    }


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


VALUE_SETS = st.dictionaries(
    st.text(max_size=8),
    st.fixed_dictionaries({}, optional={"fields": JSON, "keys_of": JSON, "denied": JSON}) | JSON,
    max_size=3,
)


@given(names=JSON | st.dictionaries(st.text(max_size=8), JSON, max_size=3), values=VALUE_SETS)
@settings(max_examples=200, deadline=None)
def test_parsing_any_denylist_never_raises_and_keeps_only_rules(names: Any, values: Any) -> None:
    rules, problems = parse({"format": "denylist", "version": 1, "names": names, "values": values})
    for rule in rules:
        assert (
            predicates.check(rule.predicate) == rule.predicate and rule.reason.strip() and rule.id.startswith("type:")
        )
    assert isinstance(problems, list)
