"""Verification by re-runs (mode `jobs`): the verdict table, which results are re-run, one run per
fingerprint, retries, human verdicts, restarts, the budget, and the whole path with real local runs."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from backend_world import Clock, World, auth, make_spec, serve
from fastapi.testclient import TestClient
from jobs_world import (
    JOBS_YAML,
    TINY_HARNESS,
    ScriptedLauncher,
    bundled_type,
    seed_bundled_harness,
    seed_harness,
    summary_bytes,
    upload_files,
    wait_for,
    with_launcher,
)

from collab_backend.jobs.base import Runs
from collab_backend.jobs.hub import HubLauncher
from collab_backend.jobs.local import LocalLauncher
from collab_backend.main import create_app
from collab_backend.record.entries import JobEntry
from collab_backend.services import verifier
from collab_backend.services.job_endings import tick
from collab_backend.services.verifier import decide, gap_of, sweep
from collab_backend.storage import Add, Delete
from collab_testing.hub import ADMIN_TOKEN

VERIFY_YAML = (
    JOBS_YAML.replace("promotions: {limit: 5,", "promotions: {limit: 50,")
    + "verification:\n  mode: jobs\n  tolerance: 0.05\n  runs_per_day: 4\n"
    "  guards: [{field: quality_gate, max: 0}]\n"
)
PRIVATE_HARNESS = TINY_HARNESS.replace(
    'parser.add_argument("--engine"', 'parser.add_argument("--private-dir")\nparser.add_argument("--engine"'
)


# -- the verdict table -----------------------------------------------------------------------------
def _end(status: str = "succeeded", summary: dict[str, Any] | None = None, reason: str = "") -> JobEntry:
    return JobEntry(1, 0.0, "job-1-1", "end", "_verifier", "_organizers", status, reason=reason,  # type: ignore[arg-type]
                    summary=summary)  # fmt: skip


def _summary(**change: Any) -> dict[str, Any]:
    base = {"valid": True, "reasons": [], "proxy": False, "provenance": {"evaluator": "t", "evaluator_version": "1"},
            "tps": 100.0, "ppl": 2.3, "quality_gate": 0}  # fmt: skip
    return {**base, **change}


NOISY = VERIFY_YAML.replace("  tracks:", "  noise: {kind: absolute, sigma: 1.0, z: 2.0, min_margin: 0}\n  tracks:")


@pytest.mark.parametrize(
    ("spec_text", "public", "end", "verdict", "words"),
    [
        (VERIFY_YAML, 100.0, _end(summary=_summary()), "valid", "within"),
        (VERIFY_YAML, 104.0, _end(summary=_summary()), "valid", "within the 5.2 allowed"),  # tolerance 5%
        (VERIFY_YAML, 106.0, _end(summary=_summary()), "invalid", "more than the 5.3 allowed"),
        (VERIFY_YAML, 9999.0, _end(summary=_summary()), "invalid", "the result says 9999"),
        (NOISY, 107.0, _end(summary=_summary()), "valid", "within the 8.17843"),  # widened by z x sigma x sqrt 2
        (NOISY, 109.0, _end(summary=_summary()), "invalid", "more than the 8.27843"),
        (VERIFY_YAML, 100.0, _end(summary=_summary(quality_gate=1)), "invalid", "guard `quality_gate` failed"),
        (VERIFY_YAML, 100.0, _end(summary=_summary(quality_gate=None)), "invalid", "guard `quality_gate` failed"),
        (VERIFY_YAML, 100.0, _end(summary=_summary(tps=None)), "invalid", "has no `tps`"),
        (VERIFY_YAML, 100.0, _end(summary=_summary(valid=False, reasons=["lossy"])), "invalid", "invalid: lossy"),
        (VERIFY_YAML, 100.0, _end("failed", reason="exited 1"), "invalid", "ended failed: exited 1"),
        (VERIFY_YAML, 100.0, _end("timeout", reason="stopped"), "invalid", "ended timeout"),
        (VERIFY_YAML, 100.0, _end("error", reason="node lost"), "pending", "infrastructure (node lost)"),
        (VERIFY_YAML, 100.0, _end(summary=_summary(proxy=True)), "pending", "stand-in"),
    ],
)
def test_a_rerun_decides_the_verdict(spec_text: str, public: float, end: JobEntry, verdict: str, words: str) -> None:
    decision = decide(make_spec(spec_text), public, end)
    assert (decision.verdict, decision.retry) == (verdict, end.status == "error"), decision
    assert words in decision.reason, decision.reason
    if verdict == "valid":
        assert decision.figures == {"tps": 100.0, "ppl": 2.3}


# -- the gap monitor -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("direction", "public", "private", "noise", "gap", "flagged"),
    [
        ("maximize", 100.0, 100.0, 0.0, 0.0, False),  # no gap: nothing to flag, even with no noise
        ("maximize", 100.0, 97.0, 2.0, 3.0, True),  # worse on the private set by more than the noise
        ("maximize", 100.0, 98.0, 2.0, 2.0, False),  # exactly the noise: inside it
        ("maximize", 100.0, 98.5, 2.0, 1.5, False),
        ("maximize", 100.0, 110.0, 2.0, -10.0, False),  # better on the private set: never the overfitting signal
        ("minimize", 50.0, 55.0, 1.0, 5.0, True),  # lower is better: a higher private figure is worse
        ("minimize", 50.0, 45.0, 1.0, -5.0, False),
        ("minimize", 50.0, 50.5, 1.0, 0.5, False),
    ],
)
def test_the_gap_rule(direction: str, public: float, private: float, noise: float, gap: float, flagged: bool) -> None:
    found = gap_of(direction, public, private, noise)
    assert (found.gap, found.noise, found.flagged) == (pytest.approx(gap), noise, flagged)


@pytest.mark.parametrize(
    ("public", "private_set", "interval", "gap", "flagged", "verdict"),
    [
        (107.0, True, None, 7.0, True, "valid"),  # within the tolerance, yet worse than the noise: flagged
        (102.0, True, None, 2.0, False, "valid"),  # inside the noise (2.83)
        (98.0, True, None, -2.0, False, "valid"),
        (109.0, True, None, 9.0, True, "invalid"),  # past the tolerance too
        (107.0, False, None, None, False, "valid"),  # re-run on the public set: no private figure, no gap
        (103.0, True, [96.0, 110.0], 3.0, False, "valid"),  # a measured interval is the noise: half-width 7
    ],
)
def test_a_verdict_records_the_gap_on_the_private_set(
    public: float, private_set: bool, interval: list[float] | None, gap: float | None, flagged: bool, verdict: str
) -> None:
    decision = decide(make_spec(NOISY), public, _end(summary=_summary()), private_set=private_set, interval=interval)
    assert decision.verdict == verdict, decision.reason
    if gap is None:
        assert decision.gap is None
        return
    assert decision.gap is not None and decision.gap.gap == pytest.approx(gap)
    assert decision.gap.flagged is flagged
    assert ("gap flagged" in decision.reason) is flagged, decision.reason


# -- the verifier over the API, with a scripted launcher ----------------------------------------------
@pytest.fixture
def vw(storage_kind: str, tmp_path: Path, clock: Clock, launcher: ScriptedLauncher) -> World:
    world = with_launcher(World(storage_kind, tmp_path, make_spec(VERIFY_YAML), clock), launcher)
    seed_harness(world, PRIVATE_HARNESS)
    world.storage.batch(world.spec.storage.audit_bucket, [Add("eval_dataset/prompts.json", b"[]")])
    return world


@pytest.fixture
def vc(vw: World) -> Iterator[TestClient]:
    yield from serve(vw)


def _agent(vw: World, vc: TestClient, name: str = "speedy", user: str = "alice", files: bytes = b"k=7") -> str:
    token = vw.user(user)
    vw.agent(vc, token, name)
    vw.write(token, vw.bucket_of(name), {"sub/config.txt": files})
    return token


def _measured(vw: World, vc: TestClient, launcher: ScriptedLauncher, token: str, agent: str = "speedy",
              tps: float = 100.0, name: str = "r") -> dict[str, Any]:  # fmt: skip
    """A job of the agent measuring `tps`, and the result naming it."""
    job = vc.post("/v1/jobs", json={"agent_id": agent, "submission": "sub", "track": "lossless"}, headers=auth(token))
    assert job.status_code == 201, job.text
    launcher.end(job.json()["id"], stage="COMPLETED", exit_code=0, summary=summary_bytes(tps=tps, ppl=2.3, proxy=False))
    tick(vw.ctx)
    return _promote(vw, vc, token, {"job": job.json()["id"], "method": "m"}, agent, name)


def _promote(vw: World, vc: TestClient, token: str, fields: dict[str, Any], agent: str = "speedy",
             name: str = "r") -> dict[str, Any]:  # fmt: skip
    text = "---\n" + yaml.safe_dump(fields) + "---\n\nwhat I did\n"
    vw.write(token, vw.bucket_of(agent), {f"results/{name}.md": text.encode()})
    response = vc.post("/v1/results", json={"agent_id": agent, "path": f"results/{name}.md"}, headers=auth(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _reruns(launcher: ScriptedLauncher) -> list[Any]:
    return [r for r in launcher.requests if r.agent == "_verifier"]


def _end_rerun(vw: World, launcher: ScriptedLauncher, index: int = -1, **summary: Any) -> None:
    job = _reruns(launcher)[index].job_id
    if summary.get("error"):
        launcher.end(job, stage="ERROR", exit_code=3)
    else:
        launcher.end(
            job,
            stage="COMPLETED",
            exit_code=0,
            summary=summary_bytes(**{"ppl": 2.3, "proxy": False, "quality_gate": 0, **summary}),
        )
    tick(vw.ctx)


def test_a_leading_result_is_rerun_on_the_private_set_verified_announced_and_ranked_by_its_private_figure(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice, tps=100.0)
    sweep(vw.ctx)
    [rerun] = _reruns(launcher)
    assert (rerun.submission_bucket, rerun.submission_path) == ("acme/fast-speedy", "sub")
    assert rerun.private == (vw.spec.storage.audit_bucket, "eval_dataset/")
    job = vc.get(f"/v1/jobs/{rerun.job_id}").json()
    assert (job["agent"], job["fingerprint"]) == ("_verifier", result["fingerprint"])
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 1  # in flight: not launched again
    _end_rerun(vw, launcher, tps=98.0)
    sweep(vw.ctx)
    shown = vc.get(f"/v1/results/{result['id']}").json()
    assert (shown["verdict"], shown["verdict_by"]) == ("valid", "verifier:jobs")
    [standing] = vc.get("/v1/leaderboard").json()["boards"][0]["standings"]
    assert (standing["score"], standing["public_score"], standing["private_score"]) == (98.0, 100.0, 98.0)
    assert standing["pending"] is False
    board = vc.get("/v1/messages", params={"channel": "results"}).json()["items"]
    assert any("@speedy" in m["body"] and "valid" in m["body"] and "98" in m["body"] for m in board)
    assert vc.get("/v1/jobs", params={"agent": "speedy"}).json()["quota"]["agent"]["used"] == 1  # not charged to it
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 1  # decided: nothing more


def test_a_gap_beyond_the_noise_is_flagged_on_the_result_the_board_and_the_gaps_list(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    """The re-run on the private set measures 96 where the job measured 100: valid (5% tolerance), gap flagged."""
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice, tps=100.0)
    assert vc.get("/v1/verification/gaps").json()["items"] == []
    sweep(vw.ctx)
    _end_rerun(vw, launcher, tps=96.0)
    sweep(vw.ctx)
    shown = vc.get(f"/v1/results/{result['id']}").json()
    assert shown["verdict"] == "valid" and shown["gap"] == pytest.approx(4.0) and shown["gap_flag"] is True
    assert shown["gap_noise"] < 4.0 and "gap flagged" in shown["verdict_reason"]
    [standing] = vc.get("/v1/leaderboard").json()["boards"][0]["standings"]
    assert (standing["private_score"], standing["gap_flag"]) == (96.0, True)
    gaps = vc.get("/v1/verification/gaps").json()
    assert "noise" in gaps["rule"]
    [item] = gaps["items"]
    assert (item["id"], item["agent"], item["public"], item["private"]) == (result["id"], "speedy", 100.0, 96.0)
    assert item["gap"] == pytest.approx(4.0) and item["verdict"] == "valid"


def test_only_a_result_that_would_beat_the_verified_champion_is_rerun(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    _measured(vw, vc, launcher, alice, tps=100.0)
    sweep(vw.ctx)
    _end_rerun(vw, launcher, tps=100.0)
    sweep(vw.ctx)
    bob = _agent(vw, vc, "slowpoke", "bob", b"k=1")
    _measured(vw, vc, launcher, bob, agent="slowpoke", tps=90.0)
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 1  # below the champion: stays pending, no re-run
    cleo = _agent(vw, vc, "quick", "cleo", b"k=9")
    quick = _measured(vw, vc, launcher, cleo, agent="quick", tps=120.0)
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 2 and _reruns(launcher)[1].submission_bucket == "acme/fast-quick"
    _end_rerun(vw, launcher, tps=60.0)  # the private figure is far below the public one
    sweep(vw.ctx)
    shown = vc.get(f"/v1/results/{quick['id']}").json()
    assert shown["verdict"] == "invalid"
    reason = vc.get("/v1/lineage").json()["items"][0]["verdict_reason"]
    assert "measured 60" in reason and "says 120" in reason


def test_twenty_concurrent_claims_of_one_fingerprint_share_one_rerun_and_its_verdict(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    first = _measured(vw, vc, launcher, alice, tps=100.0)
    results = [first] + [_promote(vw, vc, alice, {"job": first["job"], "method": f"m{i}"}, name=f"r{i}")
                         for i in range(19)]  # fmt: skip
    state = vw.ctx.record.state
    entries = [state.results[r["id"]] for r in results]
    gate = threading.Barrier(20)

    def rerun(entry: Any) -> None:
        gate.wait()
        verifier._rerun(vw.ctx, entry)

    threads = [threading.Thread(target=rerun, args=(e,)) for e in entries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(_reruns(launcher)) == 1
    _end_rerun(vw, launcher, tps=101.0)
    sweep(vw.ctx)
    assert {vc.get(f"/v1/results/{r['id']}").json()["verdict"] for r in results} == {"valid"}
    later = _promote(vw, vc, alice, {"job": first["job"], "method": "later"}, name="later")
    sweep(vw.ctx)
    assert vc.get(f"/v1/results/{later['id']}").json()["verdict"] == "valid"  # the same fingerprint's verdict
    assert len(_reruns(launcher)) == 1


def test_a_forged_claim_is_rerun_and_ruled_invalid_with_its_reason(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    claim = _promote(vw, vc, alice, {"tps": 9999, "ppl": 2.3, "track": "lossless", "method": "m", "submission": "sub"})
    assert (claim["basis"], claim["fingerprint"] is not None) == ("claim", True)
    sweep(vw.ctx)
    _end_rerun(vw, launcher, tps=100.0)
    sweep(vw.ctx)
    assert vc.get(f"/v1/results/{claim['id']}").json()["verdict"] == "invalid"
    assert all(not b["standings"] for b in vc.get("/v1/leaderboard").json()["boards"])
    bare = _promote(vw, vc, alice, {"tps": 9999, "ppl": 2.3, "track": "lossless", "method": "m"}, name="bare")
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 1  # a claim naming no submission cannot be re-run: it stays pending
    assert vc.get(f"/v1/results/{bare['id']}").json()["verdict"] == "pending"


def test_an_infrastructure_failure_stays_pending_and_is_retried_with_backoff_three_times(
    vw: World, vc: TestClient, launcher: ScriptedLauncher, clock: Clock
) -> None:
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice)
    sweep(vw.ctx)
    for tries, wait in ((1, 60), (2, 120), (3, None)):
        _end_rerun(vw, launcher, error=True)
        sweep(vw.ctx)
        shown = vc.get("/v1/lineage").json()["items"][0]
        assert shown["verdict"] == "pending" and "infrastructure" in shown["verdict_reason"], shown
        assert len(_reruns(launcher)) == tries
        if wait is None:
            break
        clock.now += wait - 1
        sweep(vw.ctx)
        assert len(_reruns(launcher)) == tries  # not before its backoff
        clock.now += 1
        sweep(vw.ctx)
        assert len(_reruns(launcher)) == tries + 1
    clock.now += 3600
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 3
    assert "3 times" in vc.get("/v1/lineage").json()["items"][0]["verdict_reason"]
    assert vc.get(f"/v1/results/{result['id']}").json()["verdict"] == "pending"


def test_a_human_verdict_wins_against_a_late_rerun(vw: World, vc: TestClient, launcher: ScriptedLauncher) -> None:
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice)
    sweep(vw.ctx)
    ruled = vc.put(f"/v1/results/{result['id']}/verdict", json={"verdict": "invalid", "reason": "cached outputs"},
                   headers=auth(ADMIN_TOKEN))  # fmt: skip
    assert ruled.status_code == 200, ruled.text
    _end_rerun(vw, launcher, tps=100.0)
    sweep(vw.ctx)
    shown = vc.get(f"/v1/results/{result['id']}").json()
    assert (shown["verdict"], shown["verdict_by"]) == ("invalid", "human:organizer")


def test_the_budget_bounds_reruns_and_never_touches_agents_quotas(
    storage_kind: str, tmp_path: Path, clock: Clock
) -> None:
    launcher = ScriptedLauncher()
    spec = make_spec(VERIFY_YAML.replace("runs_per_day: 4", "runs_per_day: 1"))
    world = with_launcher(World(storage_kind, tmp_path, spec, clock), launcher)
    seed_harness(world, PRIVATE_HARNESS)
    world.storage.batch(world.spec.storage.audit_bucket, [Add("eval_dataset/prompts.json", b"[]")])
    with TestClient(world.app) as client:
        alice = _agent(world, client)
        _measured(world, client, launcher, alice, tps=100.0)
        sweep(world.ctx)
        _end_rerun(world, launcher, tps=10.0)  # invalid: the board has no champion again
        sweep(world.ctx)
        bob = _agent(world, client, "other", "bob", b"k=2")
        second = _measured(world, client, launcher, bob, agent="other", tps=50.0)
        sweep(world.ctx)
        assert len(_reruns(launcher)) == 1
        shown = client.get("/v1/lineage").json()["items"][0]
        assert shown["id"] == second["id"] and "re-runs for 24 h are spent" in shown["verdict_reason"]
        assert client.get("/v1/jobs", params={"agent": "other"}).json()["quota"]["agent"]["used"] == 1
        assert client.get("/v1/jobs", params={"agent": "speedy"}).json()["quota"]["agent"]["used"] == 1
        clock.now += 86_400
        world.ctx.runs.verify_wait.clear()
        sweep(world.ctx)
        assert len(_reruns(launcher)) == 2


def test_a_restart_in_the_middle_of_a_rerun_finds_it_and_records_its_verdict(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice)
    sweep(vw.ctx)
    [rerun] = _reruns(launcher)
    vc.__exit__(None, None, None)  # the backend stops with the re-run still going on the Hub
    vw.restarted()
    vw.ctx = dataclasses.replace(vw.ctx, runs=Runs(poll_interval=3600))
    vw.app = create_app(vw.ctx)
    with TestClient(vw.app) as again:
        launcher.end(rerun.job_id, stage="COMPLETED", exit_code=0,
                     summary=summary_bytes(tps=99.0, ppl=2.3, proxy=False, quality_gate=0))  # fmt: skip
        tick(vw.ctx)
        sweep(vw.ctx)
        assert len(_reruns(launcher)) == 1
        assert again.get(f"/v1/results/{result['id']}").json()["verdict"] == "valid"


# -- the whole path on this machine: real local runs ----------------------------------------------
TSP_VERIFY_YAML = (
    JOBS_YAML.replace("type: gemma", "type: tsp").replace(
        "scoring:\n  score_field: tps\n  metrics: [{field: ppl, direction: minimize, guardrail: {max: 2.42}}]\n"
        "  tracks: [{name: lossless}, {name: lossy}]",
        "scoring: {score_field: tour_length, direction: minimize, required_fields: [method]}",
    )
    + "verification: {mode: jobs, tolerance: 0}\n"
)


def test_the_tsp_path_in_local_mode_claim_rerun_verdict_badge_and_a_forged_claim(tmp_path: Path, clock: Clock) -> None:
    kind: Any = bundled_type("tsp")
    world = World("local", tmp_path, make_spec(TSP_VERIFY_YAML), clock)
    with_launcher(world, LocalLauncher(world.storage, workdir=tmp_path / "runs"), poll_interval=0.05)
    seed_bundled_harness(world, kind)
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), upload_files(kind.examples_dir / "valid" / "in-id-order", "sub/"))
        job = client.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub"}, headers=auth(token)).json()
        wait_for(lambda: client.get(f"/v1/jobs/{job['id']}").json()["ended_at"] is not None)
        length = client.get(f"/v1/jobs/{job['id']}").json()["summary"]["tour_length"]
        result = _promote(world, client, token, {"job": job["id"], "method": "id order"})
        wait_for(lambda: client.get(f"/v1/results/{result['id']}").json()["verdict"] == "valid", timeout=60)
        [standing] = client.get("/v1/leaderboard").json()["boards"][0]["standings"]
        assert (standing["verdict"], standing["private_score"], standing["public_score"]) == ("valid", length, length)
        bob = world.user("bob")
        world.agent(client, bob, "forger")
        world.write(
            bob, world.bucket_of("forger"), upload_files(kind.examples_dir / "valid" / "nearest-neighbour", "sub/")
        )
        forged = _promote(world, client, bob, {"tour_length": 1, "method": "trust me", "submission": "sub"},
                          agent="forger")  # fmt: skip
        wait_for(lambda: client.get(f"/v1/results/{forged['id']}").json()["verdict"] == "invalid", timeout=60)
        reasons = {n["id"]: n["verdict_reason"] for n in client.get("/v1/lineage").json()["items"]}
        assert "the result says 1" in reasons[forged["id"]]
        [standing] = client.get("/v1/leaderboard").json()["boards"][0]["standings"]
        assert standing["result_id"] == result["id"]


def test_a_local_rerun_reads_the_private_set_from_the_audit_bucket(tmp_path: Path, clock: Clock) -> None:
    harness = PRIVATE_HARNESS.replace(
        '(args.state_dir / "summary.json")',
        "summary['tps'] = float((Path(args.private_dir) / 'score.txt').read_text()) if args.private_dir else 100.0\n"
        '(args.state_dir / "summary.json")',
    ).replace('"proxy": args.engine != "real"', '"proxy": False')
    world = World(
        "local", tmp_path, make_spec(VERIFY_YAML.replace("  guards: [{field: quality_gate, max: 0}]\n", "")), clock
    )
    with_launcher(world, LocalLauncher(world.storage, workdir=tmp_path / "runs"), poll_interval=0.05)
    seed_harness(world, harness)
    world.storage.batch(world.spec.storage.audit_bucket, [Add("eval_dataset/score.txt", b"97.5")])
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), {"sub/mode.txt": b"ok"})
        job = client.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub", "track": "lossless"},
                          headers=auth(token)).json()  # fmt: skip
        wait_for(lambda: client.get(f"/v1/jobs/{job['id']}").json()["ended_at"] is not None)
        result = _promote(world, client, token, {"job": job["id"], "ppl": 2.3, "method": "m"})
        wait_for(lambda: client.get(f"/v1/results/{result['id']}").json()["verdict"] != "pending", timeout=60)
        [standing] = client.get("/v1/leaderboard").json()["boards"][0]["standings"]
        assert (standing["verdict"], standing["public_score"], standing["private_score"]) == ("valid", 100.0, 97.5)


def test_get_v1_says_what_the_verifier_does(vc: TestClient) -> None:
    words = vc.get("/v1").json()["results"]["verification"]
    assert (
        words["mode"] == "jobs"
        and "re-run" in words["what_happens"]
        and "4 re-runs in any 24 h" in words["what_happens"]
    )


def test_without_a_private_set_the_rerun_uses_the_public_one_and_says_so(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    vw.storage.batch(vw.spec.storage.audit_bucket, [Delete("eval_dataset/prompts.json")])
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice)
    sweep(vw.ctx)
    [rerun] = _reruns(launcher)
    assert rerun.private is None
    _end_rerun(vw, launcher, tps=100.0)
    sweep(vw.ctx)
    shown = vc.get("/v1/lineage").json()["items"][0]
    assert (shown["id"], shown["verdict"]) == (result["id"], "valid")
    assert "on the public set (no private set)" in shown["verdict_reason"]


# -- the measured interval as the noise ---------------------------------------------------------------
def test_a_measured_interval_widens_the_tolerance_and_decides_ties(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    spec = make_spec(VERIFY_YAML)
    wide = _end(summary=_summary(tps=100.0, tps_ci95=[96.0, 104.0]))
    assert decide(spec, 108.0, wide).verdict == "valid"  # 5% of 108 = 5.4, plus the re-run's half-width 4
    assert decide(spec, 110.0, wide).verdict == "invalid"
    assert decide(spec, 106.0, _end(summary=_summary())).verdict == "invalid"  # 6 apart, 5.3 allowed
    assert decide(spec, 106.0, _end(summary=_summary()), interval=[104.0, 108.0]).verdict == "valid"  # 5.3 + 2
    alice = _agent(vw, vc)
    bob = _agent(vw, vc, "other", "bob", b"k=2")
    for token, agent, tps, ci in ((alice, "speedy", 100.0, [90.0, 110.0]), (bob, "other", 105.0, [104.0, 106.0])):
        job = vc.post(
            "/v1/jobs", json={"agent_id": agent, "submission": "sub", "track": "lossless"}, headers=auth(token)
        )
        launcher.end(job.json()["id"], stage="COMPLETED", exit_code=0,
                     summary=summary_bytes(tps=tps, tps_ci95=ci, ppl=2.3, proxy=False))  # fmt: skip
        tick(vw.ctx)
        _promote(vw, vc, token, {"job": job.json()["id"], "method": "m"}, agent)
    board = vc.get("/v1/leaderboard").json()
    standings = board["boards"][0]["standings"]
    assert [(s["agent"], s["rank"], s["tied"], s["interval"]) for s in standings] == [
        ("other", 1, True, [104.0, 106.0]), ("speedy", 1, True, [90.0, 110.0])]  # fmt: skip
    assert "interval" in board["ranking"]["tie_rule"]["rule"] and "overlap" in board["ranking"]["tie_rule"]["rule"]
    assert "95% interval" in vc.get("/v1").json()["results"]["tie_rule"]


# -- the Hub path, against the stateful fake ------------------------------------------------------
def test_the_hub_path_reruns_with_the_private_mount_on_the_organizers_budget(tmp_path: Path, clock: Clock) -> None:
    world = World("hub", tmp_path, make_spec(VERIFY_YAML.replace("runs_per_day: 4", "runs_per_day: 1")), clock)
    audit = world.spec.storage.audit_bucket
    hub_launcher = HubLauncher(world.hub, world.storage, token=ADMIN_TOKEN, namespace="acme", image="img",
                               flavor="a10g-small", state_bucket=audit)  # fmt: skip
    with_launcher(world, hub_launcher)
    seed_harness(world, PRIVATE_HARNESS)
    world.storage.batch(audit, [Add("eval_dataset/prompts.json", b"[]")])

    def finish(job: str, **summary: Any) -> None:
        handle = world.ctx.runs.handles.get(job) or next(
            h for h, j in world.hub.jobs.items() if j.labels["collab_job"] == job
        )
        body = summary_bytes(**{"ppl": 2.3, "proxy": False, "quality_gate": 0, **summary})
        world.storage.batch(audit, [Add(f"jobs/{job}/state/summary.json", body)])
        world.hub.advance_job(handle, "COMPLETED", exit_status=0)
        tick(world.ctx)

    with TestClient(world.app) as client:
        alice = _agent(world, client)
        job = client.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub", "track": "lossless"},
                          headers=auth(alice)).json()["id"]  # fmt: skip
        finish(job, tps=100.0)
        result = _promote(world, client, alice, {"job": job, "method": "m"})
        sweep(world.ctx)
        [rerun] = [j for j in world.hub.jobs.values() if j.labels["collab_agent"] == "_verifier"]
        mounts = {v.mount_path: (v.source, v.path, v.read_only) for v in rerun.volumes}
        assert mounts["/private"] == (audit, "eval_dataset", True) and "--private-dir" in rerun.command
        assert ADMIN_TOKEN not in str(rerun.command) and rerun.env == {} and rerun.secrets == {}
        finish(rerun.labels["collab_job"], tps=97.0)
        sweep(world.ctx)
        shown = client.get(f"/v1/results/{result['id']}").json()
        assert (shown["verdict"], shown["verdict_by"]) == ("valid", "verifier:jobs")
        bob = _agent(world, client, "other", "bob", b"k=2")
        job = client.post("/v1/jobs", json={"agent_id": "other", "submission": "sub", "track": "lossless"},
                          headers=auth(bob)).json()["id"]  # fmt: skip
        finish(job, tps=150.0)
        _promote(world, client, bob, {"job": job, "method": "m"}, agent="other")
        sweep(world.ctx)
        assert sum(j.labels["collab_agent"] == "_verifier" for j in world.hub.jobs.values()) == 1  # budget spent
        assert "re-runs for 24 h are spent" in client.get("/v1/lineage").json()["items"][0]["verdict_reason"]


def test_a_submission_changed_since_its_result_is_not_rerun(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice)
    vw.write(alice, vw.bucket_of("speedy"), {"sub/config.txt": b"k=8, tuned to the public prompts"})
    sweep(vw.ctx)
    assert _reruns(launcher) == []
    shown = vc.get("/v1/lineage").json()["items"][0]
    assert shown["id"] == result["id"] and shown["verdict"] == "pending" and "changed" in shown["verdict_reason"]


# -- the rehearsal: the whole path on the CPU stand-in, never verifying a real result ------------------------
def test_a_rehearsal_takes_the_stand_ins_rerun_as_the_measurement() -> None:
    decision = decide(make_spec(VERIFY_YAML), 100.0, _end(summary=_summary(proxy=True)), rehearsal=True)
    assert (decision.verdict, decision.figures) == ("valid", {"tps": 100.0, "ppl": 2.3})
    forged = decide(make_spec(VERIFY_YAML), 200.0, _end(summary=_summary(proxy=True)), rehearsal=True)
    assert forged.verdict == "invalid" and "the result says 200" in forged.reason
    # A stand-in's quality checks say nothing of the submission: a failed guard is named, not applied.
    gated = decide(make_spec(VERIFY_YAML), 100.0, _end(summary=_summary(proxy=True, quality_gate=1)), rehearsal=True)
    assert gated.verdict == "valid" and "guard `quality_gate` not applied: 1.0" in gated.reason
    real = decide(make_spec(VERIFY_YAML), 100.0, _end(summary=_summary(quality_gate=1)))
    assert real.verdict == "invalid" and "guard `quality_gate` failed" in real.reason


def _measured_proxy(vw: World, vc: TestClient, launcher: ScriptedLauncher, token: str, tps: float) -> dict[str, Any]:
    launch = {"agent_id": "speedy", "submission": "sub", "track": "lossless"}
    job = vc.post("/v1/jobs", json=launch, headers=auth(token))
    assert job.status_code == 201, job.text
    launcher.end(job.json()["id"], stage="COMPLETED", exit_code=0, summary=summary_bytes(tps=tps, ppl=2.3, proxy=True))
    tick(vw.ctx)
    return _promote(vw, vc, token, {"job": job.json()["id"], "method": "m", "proxy": True}, name=f"proxy-{tps}")


def test_a_rehearsal_reruns_a_proxy_and_labels_its_verdict_which_never_ranks(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    proxy = _measured_proxy(vw, vc, launcher, alice, 100.0)
    assert proxy["basis"] == "proxy"
    sweep(vw.ctx)
    assert _reruns(launcher) == []  # outside a rehearsal a proxy is never re-run
    vw.ctx.runs.rehearsal = True
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 1
    _end_rerun(vw, launcher, tps=99.0, proxy=True)
    sweep(vw.ctx)
    shown = vc.get(f"/v1/results/{proxy['id']}").json()
    assert (shown["verdict"], shown["verdict_by"]) == ("valid", "verifier:rehearsal")
    assert shown["verdict_reason"].startswith("rehearsal: the CPU stand-in's re-run, not a measurement; ")
    assert shown["rerun_figures"] == {"tps": 99.0, "ppl": 2.3}
    assert all(not b["standings"] for b in vc.get("/v1/leaderboard").json()["boards"])  # verified or not, never ranks
    board = vc.get("/v1/messages", params={"channel": "results"}).json()["items"]
    assert any("@speedy" in m["body"] and "verifier:rehearsal" in m["body"] for m in board)
    sweep(vw.ctx)
    assert len(_reruns(launcher)) == 1  # decided: no second run


def test_a_rehearsal_never_verifies_a_real_result_on_a_stand_ins_rerun(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    vw.ctx.runs.rehearsal = True
    alice = _agent(vw, vc)
    real = _measured(vw, vc, launcher, alice, tps=100.0)
    assert real["basis"] == "job"
    sweep(vw.ctx)
    _end_rerun(vw, launcher, tps=100.0, proxy=True)  # the re-run ran on a stand-in
    sweep(vw.ctx)
    shown = vc.get(f"/v1/results/{real['id']}").json()
    assert (shown["verdict"], shown["verdict_by"]) == ("pending", "verifier:jobs")
    assert "stand-in" in shown["verdict_reason"] and "rehearsal" not in shown["verdict_reason"]
    [standing] = vc.get("/v1/leaderboard").json()["boards"][0]["standings"]
    assert standing["pending"] is True and standing["private_score"] is None


def test_a_rehearsal_needs_local_jobs() -> None:
    from collab_backend.config import Settings

    spec = make_spec(VERIFY_YAML)
    with pytest.raises(ValueError, match="COLLAB_VERIFY_REHEARSAL rehearses on the local CPU stand-in"):
        Settings(spec=spec, storage="hub", hf_token="hf_x", verify_rehearsal=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="needs local jobs"):
        Settings(spec=spec, storage="local", local_root="/r", identity_file="/i", jobs="off",  # type: ignore[call-arg]
                 verify_rehearsal=True)  # fmt: skip


# -- the organizers' sweep: POST /v1/verification/sweep ------------------------------------------------------
def test_an_organizers_sweep_starts_records_and_reports_and_a_participant_may_not(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice, tps=100.0)
    refused = vc.post("/v1/verification/sweep", headers=auth(alice))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "NOT_ORGANIZER"
    assert _reruns(launcher) == []  # the participant's call started nothing
    swept = vc.post("/v1/verification/sweep", headers=auth(ADMIN_TOKEN))
    assert swept.status_code == 200, swept.text
    [rerun] = _reruns(launcher)
    assert swept.json() == {"mode": "jobs", "reruns": True, "index": {"taken_in": 0, "problem": None},
                            "recorded": [], "started": [rerun.job_id], "in_flight": []}  # fmt: skip
    again = vc.post("/v1/verification/sweep", headers=auth(ADMIN_TOKEN)).json()
    assert (again["started"], again["in_flight"]) == ([], [rerun.job_id])
    _end_rerun(vw, launcher, tps=99.0)  # the verdict is not recorded yet: no sweep since the run ended
    assert vc.get(f"/v1/results/{result['id']}").json()["verdict"] == "pending"
    done = vc.post("/v1/verification/sweep", headers=auth(ADMIN_TOKEN)).json()
    assert (done["recorded"], done["started"], done["in_flight"]) == ([result["id"]], [], [])
    assert vc.get(f"/v1/results/{result['id']}").json()["verdict"] == "valid"
    assert vc.post("/v1/verification/sweep", headers=auth(ADMIN_TOKEN)).json()["recorded"] == []


def test_an_organizers_sweep_never_overrules_a_human_and_takes_in_index_edits(
    vw: World, vc: TestClient, launcher: ScriptedLauncher
) -> None:
    alice = _agent(vw, vc)
    result = _measured(vw, vc, launcher, alice, tps=100.0)
    vc.post("/v1/verification/sweep", headers=auth(ADMIN_TOKEN))
    index = json.dumps({result["id"]: {"verdict": "invalid", "reason": "cached outputs"}})
    vw.storage.batch(vw.ctx.central, [Add("results/verification_status.json", index.encode())])
    _end_rerun(vw, launcher, tps=100.0)
    swept = vc.post("/v1/verification/sweep", headers=auth(ADMIN_TOKEN)).json()
    assert swept["index"] == {"taken_in": 1, "problem": None} and swept["recorded"] == []
    shown = vc.get(f"/v1/results/{result['id']}").json()
    assert (shown["verdict"], shown["verdict_by"]) == ("invalid", "human:index-file")


def test_an_organizers_sweep_outside_jobs_mode_says_it_reruns_nothing(
    storage_kind: str, tmp_path: Path, clock: Clock
) -> None:
    world = World(storage_kind, tmp_path, make_spec(VERIFY_YAML.replace("mode: jobs", "mode: manual")), clock)
    with TestClient(world.app, raise_server_exceptions=False) as client:
        swept = client.post("/v1/verification/sweep", headers=auth(ADMIN_TOKEN)).json()
    assert (swept["mode"], swept["reruns"], swept["started"]) == ("manual", False, [])


def test_top_k_reruns_every_pending_result_entering_the_tracks_top_k(
    storage_kind: str, tmp_path: Path, clock: Clock
) -> None:
    launcher = ScriptedLauncher()
    spec = make_spec(VERIFY_YAML.replace("runs_per_day: 4", "runs_per_day: 4\n  top_k: 2"))
    assert spec.verification.top_k == 2
    world = with_launcher(World(storage_kind, tmp_path, spec, clock), launcher)
    seed_harness(world, PRIVATE_HARNESS)
    with TestClient(world.app, raise_server_exceptions=False) as client:
        ids = {}
        for name, user, files, tps in (("speedy", "alice", b"k=7", 100.0), ("slowpoke", "bob", b"k=1", 80.0),
                                       ("quick", "cleo", b"k=9", 60.0)):  # fmt: skip
            token = _agent(world, client, name, user, files)
            ids[name] = _measured(world, client, launcher, token, agent=name, tps=tps)["id"]
        sweep(world.ctx)
        rerun = {r.submission_bucket for r in _reruns(launcher)}
        assert rerun == {"acme/fast-speedy", "acme/fast-slowpoke"}  # first and second; not the third
        assert "enters its track's top 2" in client.get("/v1").json()["results"]["verification"]["what_happens"]


def test_a_stand_in_launcher_spends_no_rerun_on_a_real_result_outside_a_rehearsal(
    storage_kind: str, tmp_path: Path, clock: Clock
) -> None:
    """Local jobs on the CPU stand-in cannot measure a claim: it stays pending, with no job and no announcement."""
    stand_in = ScriptedLauncher(stand_in=True)
    world = with_launcher(World(storage_kind, tmp_path, make_spec(VERIFY_YAML), clock), stand_in)
    seed_harness(world, PRIVATE_HARNESS)
    with TestClient(world.app, raise_server_exceptions=False) as client:
        alice = _agent(world, client)
        claim = _promote(world, client, alice, {"tps": 100.0, "ppl": 2.3, "method": "m", "track": "lossless",
                                                "submission": "sub"})  # fmt: skip
        assert claim["basis"] == "claim" and claim["fingerprint"] is not None
        [standing] = client.get("/v1/leaderboard").json()["boards"][0]["standings"]
        assert (standing["result_id"], standing["verdict"]) == (claim["id"], "pending")  # the board asks for it
        assert sweep(world.ctx).as_json() == {"recorded": [], "started": [], "in_flight": []}
        assert _reruns(stand_in) == []
        assert client.get(f"/v1/results/{claim['id']}").json()["verdict"] == "pending"
        board = client.get("/v1/messages", params={"channel": "results"}).json()["items"]
        assert not any("pending" in m["body"] for m in board)
