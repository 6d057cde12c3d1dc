"""Results tied to runs: figures from the job's checked summary, fingerprints computed, proxies never ranked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from backend_world import Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from jobs_world import (
    JOBS_YAML,
    ScriptedLauncher,
    bundled_type,
    seed_bundled_harness,
    seed_harness,
    summary_bytes,
    upload_files,
    wait_for,
    with_launcher,
)

from collab_backend.jobs.local import LocalLauncher
from collab_backend.services.job_endings import tick


@pytest.fixture
def alice(jw: World, jc: TestClient) -> str:
    token = jw.user("alice")
    jw.agent(jc, token, "speedy")
    jw.write(token, jw.bucket_of("speedy"), {"sub/config.json": b'{"k": 7}', "sub/notes.txt": b"mtp"})
    return token


def run_job(jw: World, jc: TestClient, launcher: ScriptedLauncher, token: str, agent: str = "speedy",
            track: str | None = "lossless", **summary: Any) -> str:  # fmt: skip
    """Launch a job on `sub/` and end it with a summary (the scripted launcher's default, changed)."""
    body: dict[str, Any] = {"agent_id": agent, "submission": "sub"}
    if track is not None:
        body["track"] = track
    response = jc.post("/v1/jobs", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    job = str(response.json()["id"])
    launcher.end(job, stage="COMPLETED", exit_code=0, summary=summary_bytes(**{"ppl": 2.3, **summary}))
    tick(jw.ctx)
    return job


def promote(jw: World, jc: TestClient, token: str, fields: dict[str, Any], name: str = "r", agent: str = "speedy",
            expect: int = 201) -> dict[str, Any]:  # fmt: skip
    header = yaml.safe_dump(fields, sort_keys=False)
    jw.write(token, jw.bucket_of(agent), {f"results/{name}.md": f"---\n{header}---\n\nwhat I did\n".encode()})
    response = jc.post("/v1/results", json={"agent_id": agent, "path": f"results/{name}.md"}, headers=auth(token))
    assert response.status_code == expect, response.text
    return dict(response.json())


def test_a_result_naming_its_job_takes_the_jobs_figures_and_fingerprint(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    job = run_job(jw, jc, launcher, alice, proxy=False, tps=123.5)
    result = promote(jw, jc, alice, {"job": job, "method": "mtp", "fingerprint": "sha256:typed"})
    assert (result["score"], result["metrics"], result["basis"], result["job"]) == (123.5, {"ppl": 2.3}, "job", job)
    assert result["track"] == "lossless"  # the job's track
    assert result["fingerprint"] == jc.get(f"/v1/jobs/{job}").json()["fingerprint"] != "sha256:typed"
    assert result["submission"] == {"bucket": "acme/fast-speedy", "path": "sub"}
    [standing] = jc.get("/v1/leaderboard").json()["boards"][0]["standings"]
    assert (standing["result_id"], standing["basis"], standing["job"]) == (result["id"], "job", job)
    stored = jw.storage.read(jw.spec.storage.central_bucket, f"results/{result['id']}-speedy.md").decode()
    assert f"job: {job}" in stored and "basis: job" in stored and "sha256:typed" not in stored
    # the same figures typed (as copied from the summary) agree; a typed figure that differs is refused
    promote(jw, jc, alice, {"job": job, "tps": 123.5, "ppl": 2.3}, name="same")
    refused = promote(jw, jc, alice, {"job": job, "tps": 9999}, name="forged", expect=422)["error"]
    assert refused["code"] == "FIGURE_MISMATCH" and "9999" in refused["message"] and "123.5" in refused["message"]
    refused = promote(jw, jc, alice, {"job": job, "ppl": 1.0}, name="forged-ppl", expect=422)["error"]
    assert refused["code"] == "FIGURE_MISMATCH" and "ppl" in refused["message"]


def test_the_fingerprint_is_defined_by_the_files_harness_image_and_flavor(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    first = run_job(jw, jc, launcher, alice, proxy=False, tps=1.0)
    second = run_job(jw, jc, launcher, alice, proxy=False, tps=2.0)
    fingerprint = jc.get(f"/v1/jobs/{first}").json()["fingerprint"]
    assert fingerprint == jc.get(f"/v1/jobs/{second}").json()["fingerprint"]  # same files: same configuration
    spec, central = jw.spec, jw.spec.storage.central_bucket

    def hashes(bucket: str, folder: str) -> list[list[str]]:
        return sorted([f.path.removeprefix(folder), f.hash] for f in jw.storage.list(bucket, folder).items)

    doc = {"v": 1, "type": spec.challenge.type, "image": spec.jobs.image, "flavor": spec.jobs.flavor,
           "stand_in": False, "harness": hashes(central, "harness/"),
           "submission": hashes(jw.bucket_of("speedy"), "sub/")}  # fmt: skip
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert fingerprint == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    jw.write(alice, jw.bucket_of("speedy"), {"sub/notes.txt": b"mtp, changed"})
    third = run_job(jw, jc, launcher, alice, proxy=False, tps=3.0)
    assert jc.get(f"/v1/jobs/{third}").json()["fingerprint"] != fingerprint
    # a claim naming the folder gets the fingerprint the same way; without one it has none
    claim = promote(jw, jc, alice, {"tps": 5.0, "ppl": 2.3, "track": "lossless", "submission": "sub/"}, name="c")
    assert (claim["basis"], claim["job"], claim["fingerprint"]) == (
        "claim",
        None,
        jc.get(f"/v1/jobs/{third}").json()["fingerprint"],
    )
    bare = promote(jw, jc, alice, {"tps": 5.0, "ppl": 2.3, "track": "lossless", "fingerprint": "sha256:x"}, name="b")
    assert (bare["basis"], bare["fingerprint"], bare["submission"]) == ("claim", None, None)
    missing = promote(jw, jc, alice, {"tps": 5.0, "ppl": 2.3, "track": "lossless", "submission": "nope"}, name="m",
                      expect=422)  # fmt: skip
    assert missing["error"]["code"] == "SUBMISSION_NOT_FOUND"


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("unknown", "JOB_NOT_USABLE", "no job"),
        ("other agent's", "JOB_NOT_USABLE", "launched by agent other"),
        ("running", "JOB_NOT_USABLE", "has not ended"),
        ("failed", "JOB_NOT_USABLE", "ended failed"),
        ("invalid", "JOB_NOT_USABLE", "judged the submission invalid"),
        ("not a string", "VALIDATION_FAILED", "`job` is a job id"),
        ("other track", "VALIDATION_FAILED", "ran for 'lossless'"),
    ],
)
def test_a_job_that_cannot_back_a_result_is_refused_saying_why(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher, case: str, code: str, words: str
) -> None:
    fields: dict[str, Any] = {"method": "m"}
    if case == "unknown":
        fields["job"] = "job-1-1"
    elif case == "other agent's":
        bob = jw.user("bob")
        jw.agent(jc, bob, "other")
        jw.write(bob, jw.bucket_of("other"), {"sub/x": b"1"})
        fields["job"] = run_job(jw, jc, launcher, bob, agent="other", proxy=False, tps=1.0)
    elif case == "running":
        fields["job"] = jc.post(
            "/v1/jobs", json={"agent_id": "speedy", "submission": "sub"}, headers=auth(alice)
        ).json()["id"]
    elif case == "failed":
        job = jc.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub"}, headers=auth(alice)).json()["id"]
        launcher.end(job, stage="ERROR", exit_code=1)
        tick(jw.ctx)
        fields["job"] = job
    elif case == "invalid":
        fields["job"] = run_job(jw, jc, launcher, alice, valid=False, reasons=["the engine is lossy"], proxy=False)
    elif case == "not a string":
        fields["job"] = 12
    else:
        fields.update(job=run_job(jw, jc, launcher, alice, proxy=False, tps=1.0), track="lossy")
    error = promote(jw, jc, alice, fields, expect=422)["error"]
    assert error["code"] == code and words in error["message"], error


def test_an_invalid_run_may_back_a_negative_result(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    job = run_job(jw, jc, launcher, alice, valid=False, reasons=["too slow"], proxy=False, tps=None)
    untyped = promote(jw, jc, alice, {"job": job, "status": "negative", "method": "m"}, expect=422)["error"]
    assert untyped["code"] == "JOB_NOT_USABLE" and f"job {job} measured no tps" in untyped["message"], untyped
    assert "too slow" in untyped["message"] and "post naming the job" in untyped["hint"], untyped
    result = promote(jw, jc, alice, {"job": job, "status": "negative", "tps": 0, "method": "m"})
    assert (result["status"], result["basis"], result["score"]) == ("negative", "job", 0)  # no figure: the typed one


@settings(max_examples=25, deadline=None)
@given(tps=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), ppl=st.floats(min_value=0, max_value=2.4))
def test_proxies_never_rank_whatever_their_figures(
    tps: float, ppl: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    launcher = ScriptedLauncher(stand_in=True)
    world = with_launcher(World("local", tmp_path_factory.mktemp("w"), make_spec(JOBS_YAML), Clock()), launcher)
    seed_harness(world)
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), {"sub/x": b"1"})
        job = run_job(world, client, launcher, token, proxy=True, tps=tps, ppl=ppl)
        result = promote(world, client, token, {"job": job})
        claimed = promote(world, client, token, {"tps": tps, "ppl": ppl, "track": "lossy", "proxy": True}, name="c")
        assert (result["basis"], claimed["basis"]) == ("proxy", "proxy")
        board = client.get("/v1/leaderboard").json()
        assert all(not b["standings"] for b in board["boards"])
        reasons = {e["result_id"]: e["reason"] for e in board["excluded"]["items"]}
        assert reasons[result["id"]].startswith("proxy") and reasons[claimed["id"]].startswith("proxy")
        assert "proxy" in board["ranking"]["basis"]


# -- the bundled harnesses, run for real by the local launcher ----------------------------------
TSP_YAML = JOBS_YAML.replace("type: gemma", "type: tsp").replace(
    "scoring:\n  score_field: tps\n  metrics: [{field: ppl, direction: minimize, guardrail: {max: 2.42}}]\n"
    "  tracks: [{name: lossless}, {name: lossy}]",
    "scoring: {score_field: tour_length, direction: minimize, required_fields: [method]}",
)


def _local_world(kind_name: str, spec_text: str, tmp_path: Path, clock: Clock) -> tuple[World, Any]:
    kind: Any = bundled_type(kind_name)
    world = World("local", tmp_path, make_spec(spec_text), clock)
    launcher = LocalLauncher(world.storage, workdir=tmp_path / "runs", cpu_args=tuple(kind.cpu_args))
    with_launcher(world, launcher, poll_interval=0.05)
    seed_bundled_harness(world, kind)
    return world, kind


def _local_job(client: TestClient, token: str, track: str | None = None) -> str:
    body = {"agent_id": "speedy", "submission": "sub", **({"track": track} if track else {})}
    job = client.post("/v1/jobs", json=body, headers=auth(token))
    assert job.status_code == 201, job.text
    wait_for(lambda: client.get(f"/v1/jobs/{job.json()['id']}").json()["ended_at"] is not None)
    return str(job.json()["id"])


def test_a_tsp_tour_measured_by_a_local_job_ranks_and_a_forged_length_is_refused(tmp_path: Path, clock: Clock) -> None:
    world, kind = _local_world("tsp", TSP_YAML, tmp_path, clock)
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), upload_files(kind.examples_dir / "valid" / "in-id-order", "sub/"))
        job = _local_job(client, token)
        view = client.get(f"/v1/jobs/{job}").json()
        assert (view["status"], view["valid"], view["proxy"]) == ("succeeded", True, False), view["reason"]
        length = view["summary"]["tour_length"]
        forged = promote(world, client, token, {"job": job, "tour_length": length // 2, "method": "id order"},
                         name="forged", expect=422)  # fmt: skip
        assert forged["error"]["code"] == "FIGURE_MISMATCH" and str(length) in forged["error"]["message"]
        result = promote(world, client, token, {"job": job, "method": "id order"})
        assert (result["score"], result["basis"], result["fingerprint"]) == (length, "job", view["fingerprint"])
        [standing] = client.get("/v1/leaderboard").json()["boards"][0]["standings"]
        assert (standing["result_id"], standing["score"], standing["basis"]) == (result["id"], length, "job")


def test_the_gemma_cpu_stand_in_makes_a_proxy_result_that_never_ranks(tmp_path: Path, clock: Clock) -> None:
    world, kind = _local_world("gemma", JOBS_YAML, tmp_path, clock)
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        example = sorted((kind.examples_dir / "valid").iterdir())[0]
        world.write(token, world.bucket_of("speedy"), upload_files(example, "sub/"))
        job = _local_job(client, token, track="lossless")
        view = client.get(f"/v1/jobs/{job}").json()
        assert (view["status"], view["valid"], view["proxy"]) == ("succeeded", True, True), view["reason"]
        result = promote(world, client, token, {"job": job, "method": "stand-in"})
        assert (result["basis"], result["score"]) == ("proxy", view["summary"]["tps"])
        board = client.get("/v1/leaderboard").json()
        assert all(not b["standings"] for b in board["boards"])
        assert board["excluded"]["items"][0]["reason"].startswith("proxy")


def test_get_v1_states_the_result_format_basis_fingerprint_tie_rule_and_verification(jc: TestClient) -> None:
    results = jc.get("/v1").json()["results"]
    assert (results["score_field"], results["metrics"], results["tracks"]) == ("tps", ["ppl"], ["lossless", "lossy"])
    assert {"job", "submission", "status", "parents"} <= set(results["optional_fields"])
    assert "never ranks" in results["basis"] and "never typed" in results["fingerprint"]
    assert results["tie_rule"] == jc.get("/v1/leaderboard").json()["ranking"]["tie_rule"]["rule"]
    assert results["verification"]["mode"] == "manual" and "pending" in results["verification"]["what_happens"]


def test_a_launch_whose_fingerprint_was_measured_is_told_by_whom_and_credit_follows_the_lineage(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    first = jc.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub", "track": "lossless"},
                    headers=auth(alice)).json()  # fmt: skip
    assert first["warnings"] == []  # nothing measured it yet
    launcher.end(first["id"], stage="COMPLETED", exit_code=0, summary=summary_bytes(ppl=2.3, tps=100.0, proxy=False))
    tick(jw.ctx)
    base = promote(jw, jc, alice, {"job": first["id"]})
    # another agent runs the very same files: the launch goes ahead, and says who measured them, in which result
    bob = jw.user("bob")
    jw.agent(jc, bob, "bolt")
    jw.write(bob, jw.bucket_of("bolt"), {"sub/config.json": b'{"k": 7}', "sub/notes.txt": b"mtp"})
    again = jc.post("/v1/jobs", json={"agent_id": "bolt", "submission": "sub", "track": "lossless"}, headers=auth(bob))
    assert again.status_code == 201 and again.json()["status"] == "queued"
    [warning] = again.json()["warnings"]
    assert warning["code"] == "ALREADY_MEASURED" and f"{base['id']} by speedy (tps 100, job)" in warning["message"]
    assert warning["results"] == [{"result_id": base["id"], "agent": "speedy", "score": 100.0, "basis": "job"}]
    # bolt changes the submission, measures 130 and names speedy's result as its parent: credit along lineage
    jw.write(bob, jw.bucket_of("bolt"), {"sub/notes.txt": b"mtp, k=8"})
    changed = jc.post("/v1/jobs", json={"agent_id": "bolt", "submission": "sub", "track": "lossless"},
                      headers=auth(bob)).json()  # fmt: skip
    assert changed["warnings"] == []
    launcher.end(changed["id"], stage="COMPLETED", exit_code=0, summary=summary_bytes(ppl=2.3, tps=130.0, proxy=False))
    tick(jw.ctx)
    promote(jw, jc, bob, {"job": changed["id"], "parents": [base["id"]]}, agent="bolt")
    ledger = jc.get("/v1/credit").json()
    assert [(a["agent"], a["credit"]) for a in ledger["agents"]] == [("bolt", 22.5), ("speedy", 7.5)]
    assert ledger["total_credit"] == 30.0 and "1/4" in ledger["rule"]
    page = jc.get("/v1/credit", params={"limit": 1, "offset": 1}).json()
    assert (page["total"], [(a["rank"], a["agent"]) for a in page["agents"]]) == (2, [(2, "speedy")])
    speedy = jc.get("/v1/credit/speedy").json()
    assert (speedy["credit"], speedy["lineage"], speedy["rank"]) == (7.5, 7.5, 2)
    assert jc.get("/v1/digest/speedy").json()["credit"] == {
        "credit": 7.5, "rank": 2, "agents_with_credit": 2, "detail": "GET /v1/credit/speedy"}  # fmt: skip
    assert jc.get("/v1/credit/nobody").json()["error"]["code"] == "NOT_FOUND"


def test_the_proxy_ledger_is_a_labelled_rehearsal_that_never_counts(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    base = promote(jw, jc, alice, {"job": run_job(jw, jc, launcher, alice, proxy=True, tps=100.0)})
    bob = jw.user("bob")
    jw.agent(jc, bob, "bolt")
    jw.write(bob, jw.bucket_of("bolt"), {"sub/config.json": b'{"k": 8}'})
    job = run_job(jw, jc, launcher, bob, agent="bolt", proxy=True, tps=130.0)
    promote(jw, jc, bob, {"job": job, "parents": [base["id"]]}, agent="bolt")
    real = jc.get("/v1/credit").json()
    assert (real["view"], real["agents"], real["total_credit"]) == ("real", [], 0.0) and "rehearsal" not in real
    rehearsal = jc.get("/v1/credit", params={"view": "proxy"}).json()
    assert rehearsal["view"] == "proxy" and "never counts" in rehearsal["rehearsal"]
    assert [(a["agent"], a["credit"]) for a in rehearsal["agents"]] == [("bolt", 22.5), ("speedy", 7.5)]
    assert rehearsal["rule"] == real["rule"] and rehearsal["total_credit"] == 30.0
    # the digest and an agent's own credit read the real ledger only
    assert jc.get("/v1/digest/speedy").json()["credit"]["credit"] == 0
    assert jc.get("/v1/credit/speedy").json()["credit"] == 0
    mine = jc.get("/v1/credit/speedy", params={"view": "proxy"}).json()
    assert (mine["view"], mine["credit"], mine["lineage"], mine["rank"]) == ("proxy", 7.5, 7.5, 2)
    refused = jc.get("/v1/credit", params={"view": "dream"})
    assert refused.status_code == 422 and "view" in refused.json()["error"]["message"]
