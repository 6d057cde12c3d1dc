"""Fixtures for the backend's tests: both storage adapters (the Hub one over the shared fake) and
a running API over either (see backend_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_world import Clock, World, documented_statuses, make_spec
from fastapi.testclient import TestClient

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
def storage(storage_kind: str, tmp_path: Path, fake_hub: FakeHub) -> Iterator[LocalStorage | HubStorage]:
    """A store holding two empty buckets, acme/main and acme/agent, on either adapter."""
    if storage_kind == "local":
        local = LocalStorage(tmp_path / "hub")
        local.create_bucket("acme/main")
        local.create_bucket("acme/agent")
        yield local
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
    with TestClient(world.app, raise_server_exceptions=False) as test_client:
        test_client.event_hooks["response"].append(documented_statuses(world.app))
        yield test_client
