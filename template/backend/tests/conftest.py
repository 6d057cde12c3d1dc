"""Fixtures for the backend's tests: both storage adapters (the Hub one over the shared fake),
a running API over either (see backend_world.py), and a world that runs jobs with a scripted
launcher (see jobs_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_world import Clock, World, make_spec, serve
from fastapi.testclient import TestClient
from jobs_world import JOB_ARGS, JOBS_YAML, ScriptedLauncher, seed_harness, with_launcher

from collab_backend.storage import local as local_module
from collab_backend.storage.hub import HubStorage
from collab_backend.storage.local import LocalStorage
from collab_testing.hub import ADMIN_TOKEN, FakeHub


@pytest.fixture
def fake_hub() -> FakeHub:
    hub = FakeHub()
    hub.add_user("organizer", ADMIN_TOKEN, {"acme": "admin", "acme-admin": "admin"})
    return hub


@pytest.fixture(params=["local", "hub"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(
    storage_kind: str, tmp_path: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalStorage | HubStorage]:
    """A store holding two empty buckets, acme/main and acme/agent, on either adapter.

    `local-writer-process`: the folder adapter writing every batch through its child process.
    """
    if storage_kind.startswith("local"):
        process = storage_kind == "local-writer-process"
        if process:
            monkeypatch.setattr(local_module, "WRITER_PROCESS_AT", 1)
        local = LocalStorage(tmp_path / "hub", writer_process=process)
        local.create_bucket("acme/main")
        local.create_bucket("acme/agent")
        try:
            yield local
        finally:
            local.close()
    else:
        fake_hub.create_bucket("acme/main", token=ADMIN_TOKEN)
        fake_hub.create_bucket("acme/agent", token=ADMIN_TOKEN)
        yield HubStorage(fake_hub, token=ADMIN_TOKEN)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(storage_kind: str, tmp_path: Path, clock: Clock) -> World:
    return World(storage_kind, tmp_path, make_spec(), clock)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    yield from serve(world)


@pytest.fixture
def launcher() -> ScriptedLauncher:
    return ScriptedLauncher()


@pytest.fixture
def jw(storage_kind: str, tmp_path: Path, clock: Clock, launcher: ScriptedLauncher) -> World:
    """A world with jobs on (JOBS_YAML, JOB_ARGS), the scripted launcher and the tiny harness in the central bucket."""
    world = with_launcher(World(storage_kind, tmp_path, make_spec(JOBS_YAML), clock), launcher, job_args=JOB_ARGS)
    seed_harness(world)
    return world


@pytest.fixture
def jc(jw: World) -> Iterator[TestClient]:
    yield from serve(jw)
