"""Jobs through the API with the local launcher: real subprocesses, the monitor, shutdown, the bundled harnesses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_world import Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from jobs_world import (
    JOBS_YAML,
    pid_alive,
    seed_bundled_harness,
    seed_harness,
    upload_files,
    wait_for,
    with_launcher,
)

from collab_backend.jobs.local import LocalLauncher
from provision.challenge_types import load_type, registered

CALLER_ENV = {"HF_TOKEN": "hf_organizers_secret_0123456789", "COLLAB_ADMIN_PASSWORD": "pw"}


@pytest.fixture
def local_world(storage_kind: str, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> World:
    for name, value in CALLER_ENV.items():
        monkeypatch.setenv(name, value)
    world = World(storage_kind, tmp_path, make_spec(JOBS_YAML), clock)
    launcher = LocalLauncher(world.storage, workdir=tmp_path / "runs", cpu_args=("--engine", "fake"), kill_grace_s=2)
    return with_launcher(world, launcher, poll_interval=0.05)


@pytest.fixture
def client(local_world: World) -> Iterator[TestClient]:
    with TestClient(local_world.app, raise_server_exceptions=False) as client:
        yield client


def _agent(world: World, client: TestClient, mode: str) -> str:
    token = world.user("alice")
    world.agent(client, token, "speedy")
    world.write(token, world.bucket_of("speedy"), {"sub/mode.txt": mode.encode()})
    return token


def _ended(client: TestClient, job: str) -> dict:
    wait_for(lambda: client.get(f"/v1/jobs/{job}").json()["ended_at"] is not None)
    return dict(client.get(f"/v1/jobs/{job}").json())


def test_a_local_job_runs_the_stand_in_and_records_a_proxy_summary(local_world: World, client: TestClient) -> None:
    seed_harness(local_world)
    token = _agent(local_world, client, "ok")
    job = client.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub/"}, headers=auth(token)).json()
    view = _ended(client, job["id"])
    assert (view["status"], view["charged"], view["valid"], view["proxy"]) == ("succeeded", True, True, True)
    assert view["summary"]["provenance"]["job_id"] == job["id"]
    lines = client.get(f"/v1/jobs/{job['id']}/logs", params={"tail": 1000}).json()["lines"]
    text = "\n".join(lines)
    argv = json.loads(next(line for line in lines if line.startswith("argv "))[5:])
    assert "--ppl-cap" not in argv and argv[-2:] == ["--engine", "fake"]  # a stand-in: no real-engine cap
    for secret in [*CALLER_ENV.values(), token]:
        assert secret not in text
    env = json.loads(next(line for line in lines if line.startswith("env "))[4:])
    assert not set(CALLER_ENV) & set(env)


def test_a_sponsored_run_copies_the_originators_submission_and_charges_the_sponsor(
    local_world: World, client: TestClient
) -> None:
    seed_harness(local_world)
    alice = _agent(local_world, client, "ok")  # the originator's folder says "ok"; the sponsor's says "crash"
    bob = local_world.user("bob")
    local_world.agent(client, bob, "helper")
    local_world.write(bob, local_world.bucket_of("helper"), {"sub/mode.txt": b"crash"})
    opened = client.post("/v1/run-requests", json={"agent_id": "speedy", "submission": "sub", "what": "try it"},
                         headers=auth(alice)).json()  # fmt: skip
    client.post(f"/v1/run-requests/{opened['id']}/claim", json={"agent_id": "helper"}, headers=auth(bob))
    launched = client.post(f"/v1/run-requests/{opened['id']}/launch", json={"agent_id": "helper"}, headers=auth(bob))
    assert launched.status_code == 201, launched.text
    view = _ended(client, launched.json()["id"])
    assert (view["status"], view["valid"], view["agent"], view["originator"]) == ("succeeded", True, "helper", "speedy")
    quota = client.get("/v1/jobs", params={"agent": "helper"}).json()["quota"]["agent"]["used"]
    assert quota == 1 and client.get("/v1/jobs", params={"agent": "speedy"}).json()["quota"]["agent"]["used"] == 0
    assert client.get(f"/v1/run-requests/{opened['id']}").json()["state"] == "done"


def test_a_local_infrastructure_failure_is_refunded(local_world: World, client: TestClient) -> None:
    seed_harness(local_world)
    token = _agent(local_world, client, "infra")
    job = client.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub"}, headers=auth(token)).json()
    view = _ended(client, job["id"])
    assert (view["status"], view["charged"], view["exit_code"]) == ("error", False, 3)


def test_stopping_the_backend_stops_its_runs_and_refunds_them(local_world: World) -> None:
    seed_harness(local_world)
    with TestClient(local_world.app) as client:
        token = _agent(local_world, client, "sleep")
        job = client.post("/v1/jobs", json={"agent_id": "speedy", "submission": "sub"}, headers=auth(token)).json()
        wait_for(lambda: "sleeping" in client.get(f"/v1/jobs/{job['id']}/logs").json()["lines"])
        # "running" once the monitor has looked at the run (it polls every 0.05 s: under load, later)
        wait_for(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running")
        launcher = local_world.ctx.launcher
        assert isinstance(launcher, LocalLauncher)
        pid = launcher._runs[job["id"]].process.pid
    assert not pid_alive(pid)
    events = local_world.record.state.jobs[job["id"]]
    assert (events[-1].event, events[-1].status, events[-1].charged) == ("end", "error", False)
    assert not any((local_world.tmp_path / "runs").iterdir())


# Every type this environment registers: each bundled one in the kit, the collab's own in a collab.
@pytest.mark.parametrize("name", sorted(registered()))
def test_the_registered_harness_runs_under_the_local_launcher(storage_kind: str, tmp_path: Path, clock: Clock,
                                                           name: str) -> None:  # fmt: skip
    kind = load_type(name)
    cpu_args = kind.cpu_args
    world = World(storage_kind, tmp_path, make_spec(JOBS_YAML), clock)
    with_launcher(world, LocalLauncher(world.storage, workdir=tmp_path / "runs", cpu_args=cpu_args), poll_interval=0.05)
    seed_bundled_harness(world, kind)
    example = sorted((kind.examples_dir / "valid").iterdir())[0]
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), upload_files(example, "submission/"))
        job = client.post("/v1/jobs", json={"agent_id": "speedy", "submission": "submission"}, headers=auth(token))
        assert job.status_code == 201, job.text
        view = _ended(client, job.json()["id"])
    assert (view["status"], view["valid"], view["proxy"]) == ("succeeded", True, bool(cpu_args)), view["reason"]
