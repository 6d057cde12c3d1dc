"""Taskforces, artifacts and shared resources: ownership, caps, copies by hash, path attacks."""

from __future__ import annotations

import pytest
from backend_world import World, auth
from fastapi.testclient import TestClient

from collab_backend.storage import Add


@pytest.fixture
def alice(world: World, client: TestClient) -> str:
    token = world.user("alice")
    world.agent(client, token, "speedy")
    return token


@pytest.fixture
def bob(world: World, client: TestClient) -> str:
    token = world.user("bob")
    world.agent(client, token, "helper")
    return token


def test_artifact_sync_copies_by_hash_and_skips_unchanged(world: World, client: TestClient, alice: str) -> None:
    world.write(
        alice, world.bucket_of("speedy"), {"artifacts/run1/config.json": b"{}", "artifacts/run1/log.txt": b"ok"}
    )
    first = client.post("/v1/artifacts/sync", json={"agent_id": "speedy", "source": "artifacts/"}, headers=auth(alice))
    assert first.status_code == 200, first.text
    assert sorted(c["path"] for c in first.json()["copied"]) == [
        "artifacts/speedy/run1/config.json",
        "artifacts/speedy/run1/log.txt",
    ]
    world.record.settle()  # the files of the writes before are written
    central = world.spec.storage.central_bucket
    assert world.storage.read(central, "artifacts/speedy/run1/log.txt") == b"ok"
    again = client.post("/v1/artifacts/sync", json={"agent_id": "speedy", "source": "artifacts/"}, headers=auth(alice))
    assert again.json() == {"copied": []}
    world.write(alice, world.bucket_of("speedy"), {"artifacts/run1/log.txt": b"changed"})
    third = client.post("/v1/artifacts/sync", json={"agent_id": "speedy", "source": "artifacts/"}, headers=auth(alice))
    assert [c["path"] for c in third.json()["copied"]] == ["artifacts/speedy/run1/log.txt"]


def test_shared_resources_land_under_the_agent(world: World, client: TestClient, alice: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {"drafter/weights.txt": b"w"})
    done = client.post("/v1/shared-resources/sync", json={"agent_id": "speedy", "source": "drafter/weights.txt"},
                       headers=auth(alice))  # fmt: skip
    assert [c["path"] for c in done.json()["copied"]] == ["shared_resources/speedy/weights.txt"]


@pytest.mark.parametrize(
    ("source", "code"),
    [("../fast-helper/x", "INVALID_PATH"), ("/etc/", "INVALID_PATH"), ("a//", "INVALID_PATH"),
     ("nothing.txt", "SOURCE_NOT_FOUND")],
)  # fmt: skip
def test_sync_sources_stay_in_the_agents_own_bucket(client: TestClient, alice: str, source: str, code: str) -> None:
    response = client.post("/v1/artifacts/sync", json={"agent_id": "speedy", "source": source}, headers=auth(alice))
    assert response.json()["error"]["code"] == code


def test_sync_caps(world: World, client: TestClient, alice: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {f"many/{i}.txt": b"x" for i in range(501)})
    many = client.post("/v1/artifacts/sync", json={"agent_id": "speedy", "source": "many/"}, headers=auth(alice))
    assert (
        many.json()["error"]["code"] == "VALIDATION_FAILED" and "more than 500 files" in many.json()["error"]["message"]
    )


def test_syncing_another_agents_bucket_is_refused(world: World, client: TestClient, alice: str, bob: str) -> None:
    refused = client.post("/v1/artifacts/sync", json={"agent_id": "helper", "source": "x/"}, headers=auth(alice))
    assert refused.json()["error"]["code"] == "AGENT_NOT_REGISTERED"


def test_taskforce_readme_belongs_to_its_creator(world: World, client: TestClient, alice: str, bob: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {"tf/README.md": b"# MTP drafters\nGoal: K=7 at 300 tokens/s"})
    created = client.put("/v1/taskforces/mtp", json={"agent_id": "speedy", "path": "tf/README.md"}, headers=auth(alice))
    assert created.status_code == 201 and created.json()["creator"] == "speedy"
    world.write(bob, world.bucket_of("helper"), {"README.md": b"# hijacked"})
    hijack = client.put("/v1/taskforces/mtp", json={"agent_id": "helper", "path": "README.md"}, headers=auth(bob))
    assert hijack.status_code == 403 and hijack.json()["error"]["code"] == "FORBIDDEN"
    note = client.post("/v1/taskforces/mtp/notes", json={"agent_id": "helper", "body": "K=5 is faster on AIME"},
                       headers=auth(bob))  # fmt: skip
    assert note.status_code == 201
    world.write(bob, world.bucket_of("helper"), {"bench/k5.json": b'{"tps": 290}'})
    files = client.post("/v1/taskforces/mtp/files", json={"agent_id": "helper", "source": "bench/k5.json"},
                        headers=auth(bob))  # fmt: skip
    assert [c["path"] for c in files.json()["copied"]] == ["taskforces/mtp/files/helper/k5.json"]
    view = client.get("/v1/taskforces/mtp").json()
    assert view["readme"].startswith("# MTP drafters")
    assert view["contributors"] == ["speedy", "helper"]
    assert [f["path"] for f in view["files"]] == ["taskforces/mtp/files/helper/k5.json"]
    world.write(alice, world.bucket_of("speedy"), {"tf/README.md": b"# MTP drafters v2"})
    updated = client.put("/v1/taskforces/mtp", json={"agent_id": "speedy", "path": "tf/README.md"}, headers=auth(alice))
    assert updated.status_code == 200 and updated.json()["readme"] == "# MTP drafters v2"
    assert [t["name"] for t in client.get("/v1/taskforces").json()["items"]] == ["mtp"]


def test_taskforce_names_and_unknown_taskforces(world: World, client: TestClient, alice: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {"README.md": b"x"})
    bad = client.put("/v1/taskforces/Bad_Name", json={"agent_id": "speedy", "path": "README.md"}, headers=auth(alice))
    assert bad.json()["error"]["code"] == "VALIDATION_FAILED"
    missing = client.post("/v1/taskforces/nope/notes", json={"agent_id": "speedy", "body": "x"}, headers=auth(alice))
    assert missing.status_code == 404


def test_no_agent_can_write_into_the_jobs_harness(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from backend_world import SPEC_YAML, make_spec

    text = SPEC_YAML + "jobs: {enabled: true, harness_prefix: shared_resources/harness/}\n"
    world = World("local", tmp_path, make_spec(text), clock)
    with TestClient(world.app, raise_server_exceptions=False) as client:
        token = world.user("mallory")
        world.agent(client, token, "harness")
        world.write(token, world.bucket_of("harness"), {"evil/run.py": b"print('pwned')"})
        body = {"agent_id": "harness", "source": "evil/run.py"}
        refused = client.post("/v1/shared-resources/sync", json=body, headers=auth(token))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
        assert world.storage.stat(world.spec.storage.central_bucket, ["shared_resources/harness/run.py"]) == {}


def test_sync_size_caps_refuse_a_big_file_and_a_big_total(storage_kind: str, tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from backend_world import SPEC_YAML, make_spec

    tight = World(
        storage_kind, tmp_path, make_spec(SPEC_YAML + "storage: {max_file_bytes: 10, max_sync_bytes: 15}\n"), clock
    )
    with TestClient(tight.app) as client:
        token = tight.user("alice")
        tight.agent(client, token, "speedy")
        tight.write(
            token, tight.bucket_of("speedy"), {"big/a.bin": b"x" * 11, "sum/a.bin": b"x" * 8, "sum/b.bin": b"x" * 8}
        )
        for source, message in (("big/", "big/a.bin is over 10 bytes"), ("sum/", "the files total more than 15 bytes")):
            refused = client.post(
                "/v1/artifacts/sync", json={"agent_id": "speedy", "source": source}, headers=auth(token)
            )
            assert refused.status_code == 413 and refused.json()["error"]["code"] == "BODY_TOO_LARGE"
            assert message in refused.json()["error"]["message"]
        assert not tight.storage.list(tight.spec.storage.central_bucket, "artifacts/").items


SECRET = b'{"set": "private", "items": ["the organizers\' prompt"]}'


@pytest.mark.parametrize(
    ("method", "route", "field"),
    [("POST", "/v1/artifacts/sync", "source"), ("POST", "/v1/shared-resources/sync", "source"),
     ("PUT", "/v1/taskforces/probe", "path"), ("POST", "/v1/results", "path")],
)  # fmt: skip
def test_no_file_route_reaches_the_private_set(
    world: World, client: TestClient, alice: str, method: str, route: str, field: str
) -> None:
    """The private set lies in the audit bucket: every path an agent names is a path of its own bucket."""
    audit, central = world.spec.storage.audit_bucket, world.spec.storage.central_bucket
    world.storage.batch(audit, [Add("eval_dataset/prompts.json", SECRET)])
    namespace, name = audit.split("/")
    for path in (f"../../{audit}/eval_dataset/prompts.json", f"../{name}/eval_dataset/", f"/{audit}/eval_dataset/",
                 "eval_dataset/prompts.json", f"hf://buckets/{audit}/eval_dataset/prompts.json",
                 f"{namespace}/{name}/eval_dataset/"):  # fmt: skip
        response = client.request(method, route, json={"agent_id": "speedy", field: path}, headers=auth(alice))
        assert response.status_code >= 400, (path, response.text)
        assert response.json()["error"]["code"] in ("INVALID_PATH", "SOURCE_NOT_FOUND", "VALIDATION_FAILED"), path
    leaked = [p for p in world.storage.paths(central) if world.storage.read(central, p) == SECRET]
    assert leaked == []
