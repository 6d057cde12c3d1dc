"""Every error in one envelope with a stable code; no 500 for bad input; self-description."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from backend_world import Clock, World, auth, make_spec
from fastapi.testclient import TestClient

from collab_backend.errors import CODES


def assert_envelope(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "hint"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert_envelope(client.get("/v1/nope"), 404, "ROUTE_NOT_FOUND")
    assert_envelope(client.delete("/v1/messages"), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 422, "VALIDATION_FAILED"),
        (b'{"agent_id": "\xff\xfe"}', 400, "NOT_UTF8"),
        (b"[1, 2]", 422, "VALIDATION_FAILED"),
        (b'{"agent_id": 7}', 422, "VALIDATION_FAILED"),
        (b'{"agent_id": "ok-agent", "extra": 1}', 422, "VALIDATION_FAILED"),
        (b"", 422, "VALIDATION_FAILED"),
    ],
)
def test_malformed_bodies_get_an_envelope(
    world: World, client: TestClient, content: bytes, status: int, code: str
) -> None:
    token = world.user("alice")
    headers = {"content-type": "application/json", **auth(token)}
    assert_envelope(client.post("/v1/agents", content=content, headers=headers), status, code)


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "before=" + "x" * 65])
def test_list_bounds(client: TestClient, query: str) -> None:
    assert_envelope(client.get(f"/v1/messages?{query}"), 422, "VALIDATION_FAILED")


def test_oversized_bodies_are_refused_before_parsing(world: World, client: TestClient) -> None:
    token = world.user("alice")
    huge = b'{"body": "' + b"x" * 100_000 + b'"}'
    assert_envelope(client.post("/v1/messages", content=huge, headers=auth(token)), 413, "BODY_TOO_LARGE")

    def stream():  # type: ignore[no-untyped-def]  # no Content-Length: the limit applies while reading
        for _ in range(100):
            yield b"x" * 1000

    response = client.post(
        "/v1/messages", content=stream(), headers={**auth(token), "content-type": "application/json"}
    )
    assert_envelope(response, 413, "BODY_TOO_LARGE")


def test_a_message_over_the_spec_cap(world: World, client: TestClient) -> None:
    token = world.user("alice")
    world.agent(client, token, "speedy")
    response = client.post("/v1/messages", json={"agent_id": "speedy", "body": "é" * 1001}, headers=auth(token))
    assert_envelope(response, 413, "BODY_TOO_LARGE")


def test_unknown_things_are_404_envelopes(client: TestClient) -> None:
    assert_envelope(client.get("/v1/agents/nobody"), 404, "NOT_FOUND")
    assert_envelope(client.get("/v1/messages/0000"), 404, "NOT_FOUND")
    assert_envelope(client.get("/v1/digest/nobody"), 404, "NOT_FOUND")


def test_reading_unknown_inboxes_costs_no_storage_call(world: World, client: TestClient) -> None:
    world.record.settle()  # the files of the writes before are written by now
    before = sum(world.hub.calls.values())
    for i in range(20):
        assert client.get(f"/v1/inbox/stranger-{i}").json() == {"items": [], "next": None}
    assert sum(world.hub.calls.values()) == before


def test_storage_failures_are_503_envelopes_not_500(tmp_path: Path, clock: Clock) -> None:
    hub_world = World("hub", tmp_path, make_spec(), clock)  # failure switches are the Hub fake's
    with TestClient(hub_world.app, raise_server_exceptions=False) as client:
        token = hub_world.user("alice")
        hub_world.prepare_agent(token, "speedy")
        hub_world.hub.fail("bucket_info", 503)
        response = client.post("/v1/agents", json={"agent_id": "speedy"}, headers=auth(token))
        assert_envelope(response, 503, "STORAGE_UNAVAILABLE")
        hub_world.hub.fail("bucket_info", 401)
        assert_envelope(client.get("/v1/healthz"), 503, "STORAGE_UNAVAILABLE")
        assert client.get("/v1/healthz").status_code == 200


def test_self_description_lists_limits_and_every_error_code(world: World, client: TestClient) -> None:
    described = client.get("/v1").json()
    assert described["limits"]["raw_posts"] == {"limit": 5, "window_seconds": 60}
    assert described["scratch_bucket_pattern"] == "acme/fast-{agent_id}"
    assert set(described["errors"]) == set(CODES)
    assert described["channels"] == {
        "declared": ["general", "results", "rulings"],
        "agents_may_open": True,
        "max_followed": 50,
    }
    assert described["jobs"] == {"enabled": False}  # the test spec has no jobs
    assert "/v1/messages" in client.get("/openapi.json").json()["paths"]


def test_error_codes_are_documented() -> None:
    design = (Path(__file__).resolve().parents[1] / "DESIGN.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \| (\d{3}) \|", design, flags=re.MULTILINE))
    assert documented == {(code, str(status)) for code, (status, _) in CODES.items()}
