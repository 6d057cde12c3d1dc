"""The jobs API on both storage adapters, with a scripted launcher: launch, quotas, refunds, restarts, attacks."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from backend_world import Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from jobs_world import (
    JOB_ARGS,
    JOBS_YAML,
    PLAIN_HARNESS,
    ScriptedLauncher,
    seed_harness,
    summary_bytes,
    wait_for,
    with_launcher,
)

from collab_backend.context import Context
from collab_backend.jobs.base import LauncherError, Progress, Runs
from collab_backend.jobs.hub import HubLauncher
from collab_backend.limits import Limits
from collab_backend.main import create_app
from collab_backend.record.entries import JobEntry
from collab_backend.record.store import Record
from collab_backend.services.job_endings import tick
from collab_backend.storage import Delete
from collab_testing.hub import ADMIN_TOKEN

DAY = 86_400


@pytest.fixture
def alice(jw: World, jc: TestClient) -> str:
    token = jw.user("alice")
    jw.agent(jc, token, "speedy")
    jw.write(token, jw.bucket_of("speedy"), {"sub/submission.json": b"{}", "sub/notes/a.txt": b"a"})
    return token


def launch(client: TestClient, token: str, agent: str = "speedy", submission: str = "sub", **more: Any) -> Any:
    return client.post("/v1/jobs", json={"agent_id": agent, "submission": submission, **more}, headers=auth(token))


def code(response: Any) -> str:
    return str(response.json()["error"]["code"])


# -- launching and ending ---------------------------------------------------------------------
def test_a_launch_is_charged_started_and_recorded_with_its_summary(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    response = launch(jc, alice, track="lossless")
    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["status"], job["charged"], job["agent"], job["track"]) == ("queued", True, "speedy", "lossless")
    assert job["submission"] == {"bucket": "acme/fast-speedy", "path": "sub"}
    request = launcher.requests[0]
    assert request.options == ("--job-id", job["id"], "--time-budget-s", "54", "--ppl-cap", "2.42")
    assert sorted(f.path for f in request.submission_files) == ["sub/notes/a.txt", "sub/submission.json"]
    assert request.labels["collab_job"] == job["id"] and request.timeout_s == 60
    assert alice not in json.dumps([request.options, request.labels, request.submission_path])
    launcher.progress["run-1"] = Progress("running", stage="RUNNING")
    tick(jw.ctx)
    assert jc.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"
    launcher.lines["run-1"] = ["warming up", "measured 42 tokens/s"]
    launcher.end(job["id"], stage="COMPLETED", exit_code=0, summary=summary_bytes())
    tick(jw.ctx)
    done = jc.get(f"/v1/jobs/{job['id']}").json()
    assert (done["status"], done["charged"], done["valid"], done["proxy"]) == ("succeeded", True, True, True)
    assert done["summary"]["tps"] == 42.0 and "proxy" in done["reason"] and done["ended_at"]
    assert launcher.released == ["run-1"]
    jw.record.settle()  # the files of the writes before are written
    central = jw.spec.storage.central_bucket
    assert json.loads(jw.storage.read(central, f"jobs/{job['id']}/summary.json"))["tps"] == 42.0
    assert json.loads(jw.storage.read(central, f"jobs/{job['id']}/outcome.json"))["status"] == "succeeded"
    assert jw.storage.read(central, f"jobs/{job['id']}/log.txt") == b"warming up\nmeasured 42 tokens/s\n"
    logs = jc.get(f"/v1/jobs/{job['id']}/logs", params={"tail": 1}).json()
    assert logs == {"id": job["id"], "status": "succeeded", "complete": True, "lines": ["measured 42 tokens/s"]}


def test_a_stand_in_gets_no_cap_and_a_plain_harness_no_options(storage_kind: str, tmp_path: Path, clock: Clock) -> None:
    stand_in = ScriptedLauncher(stand_in=True)
    world = with_launcher(World(storage_kind, tmp_path, make_spec(JOBS_YAML), clock), stand_in, job_args=JOB_ARGS)
    seed_harness(world)
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), {"sub/x": b"1"})
        assert launch(client, token).status_code == 201
        assert "--ppl-cap" not in stand_in.requests[0].options
        seed_harness(world, PLAIN_HARNESS)
        assert launch(client, token).status_code == 201
        assert stand_in.requests[1].options == ()


def test_a_hub_job_passes_the_specs_job_args_to_run_job(tmp_path: Path, clock: Clock) -> None:
    world = World("hub", tmp_path, make_spec(JOBS_YAML), clock)
    hub = HubLauncher(world.hub, world.storage, token=ADMIN_TOKEN, namespace="acme", image="img",
                      flavor="a10g-small", state_bucket=world.spec.storage.audit_bucket)  # fmt: skip
    with_launcher(world, hub, job_args=JOB_ARGS)
    seed_harness(world)
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), {"sub/x": b"1"})
        job = launch(client, token).json()
    (started,) = world.hub.jobs.values()
    assert started.labels["collab_job"] == job["id"]
    assert started.command[-2:] == ["--ppl-cap", "2.42"]  # after the launcher's own options
    assert started.command[started.command.index("--job-id") + 1] == job["id"]


@pytest.mark.parametrize(
    ("ending", "status", "charged"),
    [
        ({"stage": "ERROR", "exit_code": 3}, "error", False),  # the harness's infrastructure failure
        ({"stage": "ERROR", "exit_code": None, "message": "node lost"}, "error", False),  # Hub stage ERROR
        ({"stage": "CANCELED", "canceled": True}, "error", False),
        ({"stage": "COMPLETED", "exit_code": 0}, "error", False),  # exit 0 and no summary: not the agent's doing
        ({"stage": "ERROR", "exit_code": 1}, "failed", True),  # the harness failed on the submission
        ({"stage": "ERROR", "exit_code": -9, "timed_out": True}, "timeout", True),
        ({"stage": "ERROR", "timed_out": True, "started": False}, "error", False),
        ({"stage": "COMPLETED", "exit_code": 0, "summary": b"{not json"}, "failed", True),
        ({"stage": "COMPLETED", "exit_code": 0, "summary": summary_bytes(valid=False)}, "failed", True),
        ({"stage": "COMPLETED", "summary": summary_bytes(valid=False, reasons=["too slow"])}, "succeeded", True),
        ({"stage": "COMPLETED", "summary_error": "summary.json is larger than 65536 bytes"}, "failed", True),
    ],
)
def test_how_a_run_ends_decides_the_charge(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher, ending: dict, status: str, charged: bool
) -> None:
    job = launch(jc, alice).json()["id"]
    launcher.end(job, **ending)
    tick(jw.ctx)
    view = jc.get(f"/v1/jobs/{job}").json()
    assert (view["status"], view["charged"]) == (status, charged), view["reason"]
    quota = jc.get("/v1/jobs", params={"agent": "speedy"}).json()["quota"]
    assert quota["agent"]["used"] == int(charged)


def test_a_lost_run_is_refunded(jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher) -> None:
    job = launch(jc, alice).json()["id"]
    del launcher.progress["run-1"]
    tick(jw.ctx)
    view = jc.get(f"/v1/jobs/{job}").json()
    assert (view["status"], view["charged"]) == ("error", False) and "lost" in view["reason"]


def test_a_launch_that_fails_to_start_is_refunded(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    launcher.fail_next = LauncherError("no machine free")
    response = launch(jc, alice)
    assert response.status_code == 503 and code(response) == "JOB_LAUNCH_FAILED"
    assert "no machine free" in response.json()["error"]["message"]
    launcher.fail_next = RuntimeError("a bug in a launcher")
    assert code(launch(jc, alice)) == "JOB_LAUNCH_FAILED"
    items = jc.get("/v1/jobs", params={"agent": "speedy"}).json()
    assert [(j["status"], j["charged"]) for j in items["items"]] == [("error", False)] * 2
    assert items["quota"]["agent"]["used"] == 0
    assert all(launch(jc, alice).status_code == 201 for _ in range(3))  # the whole quota is still there


def test_launch_attempts_count_as_raw_posts_so_failing_ones_cannot_flood_the_record(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    limit = jw.spec.board.raw_posts.limit
    for _ in range(limit):
        launcher.fail_next = LauncherError("no machine free")
        assert code(launch(jc, alice)) == "JOB_LAUNCH_FAILED"
    refused = launch(jc, alice)
    assert refused.status_code == 429 and code(refused) == "RATE_LIMITED"
    assert jc.get("/v1/jobs", params={"agent": "speedy"}).json()["quota"]["agent"]["used"] == 0
    jw.restarted()
    with TestClient(jw.app) as again:
        assert code(launch(again, alice)) == "RATE_LIMITED"  # the window survives a restart too


def test_a_job_far_past_its_timeout_is_canceled(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher, clock: Clock
) -> None:
    first = launch(jc, alice).json()["id"]
    second = launch(jc, alice).json()["id"]
    launcher.progress["run-1"] = Progress("running", stage="RUNNING")
    clock.now += 60 + jw.ctx.runs.overdue_grace_s + 1
    tick(jw.ctx)
    assert launcher.canceled == ["run-1", "run-2"]
    assert [jc.get(f"/v1/jobs/{j}").json()["status"] for j in (first, second)] == ["timeout", "error"]
    assert [jc.get(f"/v1/jobs/{j}").json()["charged"] for j in (first, second)] == [True, False]


def test_an_uninspectable_job_is_retried_then_refunded_when_overdue(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher, clock: Clock
) -> None:
    job = launch(jc, alice).json()["id"]
    launcher.poll_error = LauncherError("the Hub answered 500")
    tick(jw.ctx)
    assert jc.get(f"/v1/jobs/{job}").json()["status"] == "queued"
    clock.now += 60 + jw.ctx.runs.overdue_grace_s + 1
    tick(jw.ctx)
    assert jc.get(f"/v1/jobs/{job}").json()["charged"] is False


# -- quotas -----------------------------------------------------------------------------------
def test_the_agent_quota_is_a_sliding_24_hour_window(jw: World, jc: TestClient, alice: str, clock: Clock) -> None:
    for _ in range(2):
        assert launch(jc, alice).status_code == 201
    clock.now += 3600
    assert launch(jc, alice).status_code == 201
    refused = launch(jc, alice)
    assert refused.status_code == 429 and code(refused) == "QUOTA_EXCEEDED"
    assert int(refused.headers["Retry-After"]) == DAY - 3600
    clock.now += DAY - 3600 + 1  # the first two launches leave the window, the third stays
    assert launch(jc, alice).status_code == 201
    assert launch(jc, alice).status_code == 201
    assert code(launch(jc, alice)) == "QUOTA_EXCEEDED"
    quota = jc.get("/v1/jobs", params={"agent": "speedy"}).json()["quota"]
    assert quota["agent"] == {"used": 3, "limit": 3} and quota["user"] == {"used": 3, "limit": 5}


def test_the_user_quota_spans_all_of_a_users_agents_and_overrides_apply(jw: World, jc: TestClient, alice: str) -> None:
    for agent in ("second", "vip-agent", "banned"):
        jw.agent(jc, alice, agent)
        jw.write(alice, jw.bucket_of(agent), {"sub/x": b"1"})
    assert code(launch(jc, alice, "banned")) == "QUOTA_EXCEEDED"
    assert [launch(jc, alice, "vip-agent").status_code for _ in range(4)] == [201] * 4  # beyond the default 3
    assert launch(jc, alice).status_code == 201
    refused = launch(jc, alice, "second")
    assert code(refused) == "QUOTA_EXCEEDED" and "user alice" in refused.json()["error"]["message"]
    bob = jw.user("bob")
    jw.agent(jc, bob, "bobs")
    jw.write(bob, jw.bucket_of("bobs"), {"sub/x": b"1"})
    assert launch(jc, bob, "bobs").status_code == 201  # another user's quota is their own


def test_concurrent_launches_cannot_overspend(jw: World, jc: TestClient, alice: str) -> None:
    for agent in ("second", "third"):
        jw.agent(jc, alice, agent)
        jw.write(alice, jw.bucket_of(agent), {"sub/x": b"1"})
    agents = ["speedy", "second", "third"] * 12
    barrier = threading.Barrier(len(agents))

    def go(agent: str) -> int:
        barrier.wait()
        return int(launch(jc, alice, agent).status_code)

    with ThreadPoolExecutor(max_workers=len(agents)) as pool:
        statuses = list(pool.map(go, agents))
    assert statuses.count(201) == 5 and statuses.count(429) == len(agents) - 5  # the user's 5, no more
    state = jw.record.state
    assert len(state.jobs_by_user["alice"]) == 5
    assert all(len(state.jobs_by_agent[a]) <= 3 for a in ("speedy", "second", "third"))


def test_quotas_and_jobs_survive_a_restart(jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher) -> None:
    ids = [launch(jc, alice).json()["id"] for _ in range(3)]
    launcher.end(ids[0], stage="ERROR", exit_code=3)
    tick(jw.ctx)
    jc.__exit__(None, None, None)
    again = ScriptedLauncher()
    again.progress["run-2"] = Progress("ended", stage="COMPLETED", exit_code=0, summary=summary_bytes())
    again.progress["run-3"] = Progress("running", stage="RUNNING")
    record = Record(jw.storage, jw.spec.storage.central_bucket, clock=jw.record.clock)
    ctx = Context(jw.spec, jw.storage, record, jw.ctx.identity, Limits.from_spec(jw.spec), launcher=again,
                  runs=Runs(poll_interval=3600))  # fmt: skip
    with TestClient(create_app(ctx)) as client:
        assert launch(client, alice).status_code == 201  # the refunded first launch left room for one
        assert code(launch(client, alice)) == "QUOTA_EXCEEDED"
        tick(ctx)  # the monitor picks up the runs the index says are going, by their recorded handles
        statuses = [client.get(f"/v1/jobs/{j}").json()["status"] for j in ids]
        assert statuses == ["error", "succeeded", "running"]


def test_a_launch_interrupted_before_its_start_is_found_or_refunded(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher, clock: Clock
) -> None:
    def interrupted(state: Any, seq: int, ts: float) -> JobEntry:
        return JobEntry(seq, ts, f"job-{int(ts * 1000)}-{seq}", "launch", "speedy", "alice", "queued",
                        source={"bucket": "acme/fast-speedy", "path": "sub"})  # fmt: skip

    lost, found = jw.record.write(interrupted), jw.record.write(interrupted)
    launcher.found[found.job_id] = "run-9"
    launcher.progress["run-9"] = Progress("running", stage="RUNNING")
    tick(jw.ctx)
    assert jc.get(f"/v1/jobs/{lost.job_id}").json()["status"] == "queued"  # within the start grace
    clock.now += jw.ctx.runs.start_grace_s + 1
    tick(jw.ctx)
    assert jc.get(f"/v1/jobs/{lost.job_id}").json()["charged"] is False
    view = jc.get(f"/v1/jobs/{found.job_id}").json()
    assert view["status"] == "running" and view["started_at"]


# -- reading ----------------------------------------------------------------------------------
def test_lists_page_newest_first(jw: World, jc: TestClient, alice: str) -> None:
    bob = jw.user("bob")
    jw.agent(jc, bob, "bobs")
    jw.write(bob, jw.bucket_of("bobs"), {"sub/x": b"1"})
    mine = [launch(jc, alice).json()["id"] for _ in range(3)]
    theirs = launch(jc, bob, "bobs").json()["id"]
    first = jc.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in first["items"]] == [theirs, mine[2]] and first["next"] == mine[2]
    assert "quota" not in first and "summary" not in first["items"][0]
    rest = jc.get("/v1/jobs", params={"limit": 2, "before": first["next"]}).json()
    assert [j["id"] for j in rest["items"]] == [mine[1], mine[0]] and rest["next"] is None
    own = jc.get("/v1/jobs", params={"agent": "speedy", "limit": 1, "before": mine[2]}).json()
    assert [j["id"] for j in own["items"]] == [mine[1]] and own["next"] == mine[1]
    assert jc.get("/v1/jobs", params={"agent": "nobody"}).json() == {"items": [], "next": None, "quota": None}
    for bad in ({"limit": 0}, {"limit": 201}, {"before": "x"}, {"agent": "a" * 65}):
        assert code(jc.get("/v1/jobs", params=bad)) == "VALIDATION_FAILED"


def test_live_logs_come_from_the_launcher_bounded_and_redacted(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher
) -> None:
    job = launch(jc, alice).json()["id"]
    launcher.lines["run-1"] = [f"line {i}" for i in range(50)] + ["key hf_abcdefghijklmnopqrstuvwxyz123", "x" * 5000]
    logs = jc.get(f"/v1/jobs/{job}/logs", params={"tail": 2}).json()
    assert logs["complete"] is False and logs["lines"][0] == "key hf_[redacted]" and len(logs["lines"][1]) == 2000
    for bad in (0, 1001, "x"):
        assert code(jc.get(f"/v1/jobs/{job}/logs", params={"tail": bad})) == "VALIDATION_FAILED"


def test_concurrent_live_log_reads_make_one_launcher_call(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = launch(jc, alice).json()["id"]
    calls: list[str] = []
    gate = threading.Event()

    def slow_logs(handle: str, tail: int) -> list[str]:
        calls.append(handle)
        gate.wait(10)  # slower than the cache's lifetime would allow if it were stamped before the fetch
        return ["working"]

    monkeypatch.setattr(launcher, "logs", slow_logs)
    monkeypatch.setattr("collab_backend.services.job_views.LIVE_LOG_TTL", 0.2)
    with ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(jc.get, f"/v1/jobs/{job}/logs") for _ in range(8)]
        wait_for(lambda: len(calls) >= 1)
        threading.Timer(0.5, gate.set).start()
        results = [a.result() for a in answers]
    assert len(calls) == 1
    assert all(r.status_code == 200 and r.json()["lines"] == ["working"] for r in results)


def test_live_log_fetches_are_capped_over_all_jobs(
    jw: World, jc: TestClient, alice: str, launcher: ScriptedLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = launch(jc, alice).json()["id"], launch(jc, alice).json()["id"]
    jw.ctx.runs.max_live_fetches = 1
    calls: list[str] = []
    gate = threading.Event()

    def slow_logs(handle: str, tail: int) -> list[str]:
        calls.append(handle)
        gate.wait(10)
        return [f"from {handle}"]

    monkeypatch.setattr(launcher, "logs", slow_logs)
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(jc.get, f"/v1/jobs/{first}/logs")
        wait_for(lambda: len(calls) == 1)
        refused = jc.get(f"/v1/jobs/{second}/logs")
        assert refused.status_code == 503 and code(refused) == "JOBS_UNAVAILABLE"
        assert refused.headers["Retry-After"] == "2"
        gate.set()
        assert held.result().json()["lines"] == ["from run-1"]
    assert calls == ["run-1"] and jw.ctx.runs.live_fetches == 0
    assert jc.get(f"/v1/jobs/{second}/logs").json()["lines"] == ["from run-2"]


# -- refusals and attacks -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "submission",
    ["../acme/fast-other/sub", "/sub", "sub/../../x", "hf://buckets/acme/fast-bob/sub", "sub\\x", "", ".", "sub//x",
     "a\x00b", "x" * 513],
)  # fmt: skip
def test_submission_paths_that_escape_are_refused_before_any_charge(
    jw: World, jc: TestClient, alice: str, submission: str
) -> None:
    response = launch(jc, alice, submission=submission)
    assert response.status_code == 422 and code(response) in ("INVALID_PATH", "VALIDATION_FAILED")
    assert jw.record.state.job_order == []


def test_another_agents_bucket_cannot_be_named(jw: World, jc: TestClient, alice: str) -> None:
    bob = jw.user("bob")
    jw.agent(jc, bob, "bobs")
    jw.write(bob, jw.bucket_of("bobs"), {"secret/x": b"1"})
    response = launch(jc, alice, submission="acme/fast-bobs/secret")  # a folder of alice's own bucket
    assert code(response) == "SUBMISSION_NOT_FOUND" and "acme/fast-speedy" in response.json()["error"]["message"]
    assert code(launch(jc, alice, agent="bobs", submission="secret")) == "AGENT_NOT_REGISTERED"
    assert jw.record.state.job_order == []


def test_a_spoofed_agent_id_is_refused_and_charges_nobody(jw: World, jc: TestClient, alice: str) -> None:
    mallory = jw.user("mallory")
    response = launch(jc, mallory, agent="speedy")
    assert response.status_code == 403 and code(response) == "AGENT_NOT_REGISTERED"
    assert code(jc.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub"})) == "UNAUTHENTICATED"
    assert code(launch(jc, "hf_forged_token")) == "UNAUTHENTICATED"
    assert jw.record.state.job_order == []


def test_malformed_and_oversized_bodies_are_refused(jw: World, jc: TestClient, alice: str) -> None:
    headers = {**auth(alice), "Content-Type": "application/json"}
    assert code(jc.post("/v1/jobs", content=b"{nope", headers=headers)) == "VALIDATION_FAILED"
    assert code(jc.post("/v1/jobs", json={"agent_id": "speedy"}, headers=auth(alice))) == "VALIDATION_FAILED"
    extra = {"agent_id": "speedy", "submission": "sub", "env": {"HF_TOKEN": "x"}}
    assert code(jc.post("/v1/jobs", json=extra, headers=auth(alice))) == "VALIDATION_FAILED"
    assert code(launch(jc, alice, track="x" * 65)) == "VALIDATION_FAILED"
    assert code(launch(jc, alice, track="fastest")) == "VALIDATION_FAILED"
    huge = jc.post("/v1/jobs", content=b'{"agent_id": "' + b"a" * 30_000 + b'"}', headers=headers)
    assert huge.status_code == 413 and code(huge) == "BODY_TOO_LARGE"
    assert jw.record.state.job_order == []


def test_unknown_job_ids_cost_no_storage_call(jw: World, jc: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_storage(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("storage was called")

    for name in ("list", "stat", "read", "batch", "bucket_exists"):
        monkeypatch.setattr(jw.storage, name, no_storage)
    for path in ("/v1/jobs/job-1800000000000-1", "/v1/jobs/job-1800000000000-1/logs", "/v1/jobs/../../etc",
                 "/v1/jobs/" + "x" * 60):  # fmt: skip
        response = jc.get(path)
        assert response.status_code == 404 and code(response) in ("JOB_UNKNOWN", "ROUTE_NOT_FOUND"), path
    assert code(jc.get("/v1/jobs/" + "x" * 65)) == "VALIDATION_FAILED"


def test_launch_refusals_before_the_charge(jw: World, jc: TestClient, alice: str) -> None:
    assert code(launch(jc, alice, submission="missing")) == "SUBMISSION_NOT_FOUND"
    jw.write(alice, jw.bucket_of("speedy"), {f"many/{i}": b"1" for i in range(jw.spec.storage.max_sync_files + 1)})
    assert code(launch(jc, alice, submission="many")) == "BODY_TOO_LARGE"
    jw.storage.batch(jw.spec.storage.central_bucket, [Delete("harness/run.py")])
    response = launch(jc, alice)
    assert response.status_code == 503 and code(response) == "JOB_LAUNCH_FAILED"
    assert jw.record.state.job_order == []


def test_jobs_off_in_the_spec_or_in_the_backend(storage_kind: str, tmp_path: Path, clock: Clock) -> None:
    for folder in ("off", "none"):
        (tmp_path / folder).mkdir()
    off = World(storage_kind, tmp_path / "off", make_spec(), clock)  # the spec's default: jobs off
    with TestClient(with_launcher(off, ScriptedLauncher()).app) as client:
        token = off.user("alice")
        off.agent(client, token, "speedy")
        response = launch(client, token)
        assert response.status_code == 403 and code(response) == "JOBS_DISABLED"
    backend_off = World(storage_kind, tmp_path / "none", make_spec(JOBS_YAML), clock)  # no launcher
    with TestClient(backend_off.app) as client:
        token = backend_off.user("alice")
        backend_off.agent(client, token, "speedy")
        response = launch(client, token)
        assert code(response) == "JOBS_DISABLED" and "COLLAB_JOBS" in response.json()["error"]["hint"]


def test_launches_and_refusals_are_audited(jw: World, jc: TestClient, alice: str) -> None:
    assert launch(jc, alice).status_code == 201
    assert code(launch(jc, jw.user("mallory"))) == "AGENT_NOT_REGISTERED"
    jw.audit.flush()
    bucket = jw.spec.storage.audit_bucket
    events = [
        json.loads(line)
        for info in jw.storage.list(bucket, "audit/").items
        for line in jw.storage.read(bucket, info.path).decode().splitlines()
    ]
    jobs = [(e["status"], e["code"], e["user"]) for e in events if e["path"] == "/v1/jobs"]
    assert jobs == [(201, None, "alice"), (403, "AGENT_NOT_REGISTERED", "mallory")]
    assert alice not in json.dumps(events)


def test_the_self_description_says_how_jobs_run(jw: World, jc: TestClient) -> None:
    jobs = jc.get("/v1").json()["jobs"]
    assert jobs["enabled"] is True and jobs["launch"] == "POST /v1/jobs"
    assert jobs["timeout_minutes"] == 1 and jobs["quota"] == {"per_agent_per_day": 3, "per_user_per_day": 5}
    assert jobs["flavor"] == jw.spec.jobs.flavor


def test_submission_size_caps_are_refused_before_the_charge(
    storage_kind: str, tmp_path: Path, clock: Clock, launcher: ScriptedLauncher
) -> None:
    tight_yaml = JOBS_YAML + "storage: {max_file_bytes: 10, max_sync_bytes: 15}\n"
    world = with_launcher(World(storage_kind, tmp_path, make_spec(tight_yaml), clock), launcher)
    seed_harness(world)
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), {"big/a": b"x" * 11, "sum/a": b"x" * 8, "sum/b": b"x" * 8})
        for folder, message in (("big", "big/a is over 10 bytes"), ("sum", "the files total more than 15 bytes")):
            refused = launch(client, token, submission=folder)
            assert refused.status_code == 413 and code(refused) == "BODY_TOO_LARGE"
            assert message in refused.json()["error"]["message"]
        assert client.get("/v1/jobs", params={"agent": "speedy"}).json()["items"] == []
        assert launcher.requests == []
