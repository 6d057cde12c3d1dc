"""The test world of the backend: a running API plus the people, agents and buckets around it.

Imported by tests and by conftest.py under this unique module name (a module called `conftest`
would be ambiguous across the test trees).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from collab_backend.audit import AuditLog
from collab_backend.context import Context
from collab_backend.identity import HubIdentity, LocalIdentity
from collab_backend.limits import Limits
from collab_backend.main import create_app
from collab_backend.record.store import Record
from collab_backend.spec import ChallengeSpec
from collab_backend.storage import Add, Storage
from collab_backend.storage.hub import HubStorage
from collab_backend.storage.local import LocalStorage
from collab_testing.hub import ADMIN_TOKEN, FakeHub
from collab_testing.types import any_type
from provision.spec import load_spec

# Any registered type: what these tests check does not depend on it (a collab registers its own only).
CHALLENGE_TYPE = any_type()
SPEC_YAML = (
    "spec_version: 2\n"
    f"challenge: {{org: acme, slug: fast, title: Fast decode, type: {CHALLENGE_TYPE}}}\n"
    """\
scoring: {score_field: tps}
board:
  channels: [{name: general}, {name: results}]
  raw_posts: {limit: 5, window_seconds: 60}
  promotions: {limit: 5, window_seconds: 60}
  registrations: {limit: 3, window_seconds: 3600}
  mention_fanout_cap: 3
  max_message_bytes: 2000
"""
)


def make_spec(text: str = SPEC_YAML, tmp: Path | None = None) -> ChallengeSpec:
    """A backend spec from challenge.yaml text, through the real loader."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "challenge.yaml"
        path.write_text(text, encoding="utf-8")
        document = load_spec(path).document
    return ChallengeSpec.model_validate(document)


class World:
    """A running backend plus the people and agents around it, on the Hub fake or on folders."""

    def __init__(self, kind: str, tmp_path: Path, spec: ChallengeSpec, clock: Callable[[], float]) -> None:
        self.kind, self.tmp_path, self.spec, self.clock = kind, tmp_path, spec, clock
        self.hub = FakeHub()
        self.tokens: dict[str, dict[str, Any]] = {}
        self.add_user("organizer", ADMIN_TOKEN, {"acme": "admin", "acme-admin": "admin"})
        storage: Storage
        if kind == "hub":
            storage, identity = HubStorage(self.hub, token=ADMIN_TOKEN), HubIdentity(self.hub)
            self.hub.create_bucket(spec.storage.central_bucket, token=ADMIN_TOKEN)
            self.hub.create_bucket(spec.storage.audit_bucket, private=True, token=ADMIN_TOKEN)
        else:
            self.local = LocalStorage(tmp_path / "hub")
            self.local.create_bucket(spec.storage.central_bucket)
            self.local.create_bucket(spec.storage.audit_bucket)
            storage, identity = self.local, LocalIdentity(tmp_path / "identities.json")
            self._save_identities()
        self.storage = storage
        self.record = Record(storage, spec.storage.central_bucket, clock=clock)
        self.audit = AuditLog(storage, spec.storage.audit_bucket, clock=clock, interval=3600)
        self.ctx = Context(spec, storage, self.record, identity, Limits.from_spec(spec, clock=clock), audit=self.audit)
        self.app = create_app(self.ctx)

    def restarted(self) -> World:
        """The backend started again over the same storage: a new record, limits and app."""
        self.record = Record(self.storage, self.spec.storage.central_bucket, clock=self.clock)
        limits = Limits.from_spec(self.spec, clock=self.clock)
        self.ctx = dataclasses.replace(self.ctx, record=self.record, limits=limits)
        self.app = create_app(self.ctx)
        return self

    def _save_identities(self) -> None:
        if self.kind == "local":
            (self.tmp_path / "identities.json").write_text(json.dumps(self.tokens), encoding="utf-8")

    def add_user(self, name: str, token: str, orgs: dict[str, str]) -> str:
        self.hub.add_user(name, token, orgs)
        self.tokens[token] = {"user": name, "orgs": orgs}
        self._save_identities()
        return token

    def user(self, name: str, role: str = "contributor") -> str:
        """A participant (a contributor of the challenge org); returns their token."""
        return self.add_user(name, f"hf_{name}_token", {"acme": role})

    def bucket_of(self, agent_id: str) -> str:
        return f"acme/fast-{agent_id}"

    def write(self, token: str, bucket: str, files: dict[str, bytes]) -> None:
        """Write into a bucket as that token's user (creating it, as its owner, if needed)."""
        if self.kind == "hub":
            self.hub.create_bucket(bucket, exist_ok=True, token=token)
            HubStorage(self.hub, token=token).batch(bucket, [Add(p, d) for p, d in files.items()])
        else:
            self.local.create_bucket(bucket)
            self.local.batch(bucket, [Add(p, d) for p, d in files.items()])

    def prepare_agent(self, token: str, agent_id: str, handshake: str | None = None) -> None:
        user = self.tokens[token]["user"]
        self.write(token, self.bucket_of(agent_id), {"collab-handshake.txt": (handshake or user).encode()})

    def agent(self, client: TestClient, token: str, agent_id: str) -> dict[str, Any]:
        """Prepare the scratch bucket and register; returns the registration."""
        self.prepare_agent(token, agent_id)
        response = client.post("/v1/agents", json={"agent_id": agent_id}, headers=auth(token))
        assert response.status_code in (200, 201), response.text
        return dict(response.json())


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Clock:
    """A settable clock for rate-limit tests (starts now, moves only when told)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def documented_statuses(app: Any) -> Callable[[httpx.Response], None]:
    """A response hook: every answer of an operation uses a status its OpenAPI entry lists.

    Every app has the same routes, so their document is built once per session.
    """
    if not _OPERATIONS:
        _OPERATIONS.extend(_operations(app))
    operations = _OPERATIONS

    def check(response: httpx.Response) -> None:
        request = response.request
        for pattern, method, statuses in operations:
            if method == request.method and pattern.match(request.url.path):
                assert str(response.status_code) in statuses, (
                    f"{method} {request.url.path} answered {response.status_code}, not listed in its OpenAPI entry"
                )
                return

    return check


_OPERATIONS: list[tuple[re.Pattern[str], str, set[str]]] = []


def _operations(app: Any) -> list[tuple[re.Pattern[str], str, set[str]]]:
    return [
        (
            re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"),
            method.upper(),
            set(op["responses"]),
        )
        for path, methods in app.openapi()["paths"].items()
        for method, op in methods.items()
    ]


def serve(world: World) -> Iterator[TestClient]:
    """A client of the world's API that holds every status it sees to the OpenAPI document."""
    with TestClient(world.app, raise_server_exceptions=False) as test_client:
        test_client.event_hooks["response"].append(documented_statuses(world.app))
        yield test_client
