"""What a request or a promoted file may bring in: values the record cannot store are refused at the
door (naming the field) or normalised, bodies that break the framing get the envelope, and the
central files keep only what the backend accepts."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from backend_world import SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from test_api_errors import assert_envelope

from collab_backend.middleware import MAX_JSON_DEPTH
from collab_backend.server import H11Protocol, HttpToolsProtocol

# What comes in is checked before any storage call: one adapter is enough.
pytestmark = pytest.mark.parametrize("storage_kind", ["local"])


@pytest.fixture
def alice(world: World, client: TestClient) -> str:
    token = world.user("alice", role="admin")
    world.agent(client, token, "speedy")
    return token


def promote(world: World, client: TestClient, token: str, text: bytes, path: str = "post.md"):  # type: ignore[no-untyped-def]
    world.write(token, world.bucket_of("speedy"), {path: text})
    return client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": path}, headers=auth(token))


def central_text(world: World, path: str) -> str:
    world.record.settle()  # the files of the writes before are written
    return world.storage.read(world.spec.storage.central_bucket, path).decode()


# -- frontmatter -------------------------------------------------------------------------------------
def test_a_post_with_a_date_is_promoted_and_the_writer_goes_on(world: World, client: TestClient, alice: str) -> None:
    dated = promote(world, client, alice, b"---\ndate: 2026-01-05\nwhen: 2026-01-05 10:30:00\n---\nsee you then")
    assert dated.status_code == 201, dated.text  # normalised to text, then dropped: not a field of a post
    after = client.post("/v1/messages", json={"agent_id": "speedy", "body": "after"}, headers=auth(alice))
    assert after.status_code == 201 and client.get("/v1/healthz").status_code == 200


@pytest.mark.parametrize(
    ("header", "field", "says"),
    [
        (b'note: "\\ud800"', "note", "lone surrogate"),
        (b'note: "a\\0b"', "note", "NUL"),
        (b"blob: !!binary aGVsbG8=", "blob", "bytes value"),
        (b"tags: !!set {a, b}", "tags", "set value"),
        (b"big: 123456789012345678901234567890", "big", "64 bits"),
        (b"ratio: .inf", "ratio", "not finite"),
        (b"deep: {1: x}", "deep", "key that is not text"),
        (b'list: [ok, "\\udfff"]', "list[1]", "lone surrogate"),
    ],
)
def test_unstorable_frontmatter_is_refused_naming_the_field(
    world: World, client: TestClient, alice: str, header: bytes, field: str, says: str
) -> None:
    answer = promote(world, client, alice, b"---\n" + header + b"\n---\nbody")
    assert_envelope(answer, 422, "VALIDATION_FAILED")
    error = answer.json()["error"]
    assert f"`{field}`" in error["message"] and says in error["message"] and error["hint"]
    assert client.get("/v1/healthz").status_code == 200


def test_a_result_keeps_dates_as_iso_text(tmp_path: Path, clock: Clock, storage_kind: str) -> None:
    spec = make_spec(
        SPEC_YAML.replace("scoring: {score_field: tps}", "scoring: {score_field: tps, required_fields: [day, at]}")
    )
    world = World(storage_kind, tmp_path, spec, clock)
    with TestClient(world.app, raise_server_exceptions=False) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        text = b"---\ntps: 10\nfingerprint: sha256:ab\nday: 2026-01-05\nat: 2026-01-05T10:30:00Z\n---\nrun"
        world.write(token, world.bucket_of("speedy"), {"r.md": text})
        answer = client.post("/v1/results", json={"agent_id": "speedy", "path": "r.md"}, headers=auth(token))
        assert answer.status_code == 201, answer.text
        stored = central_text(world, f"results/{answer.json()['id']}-speedy.md")
        assert "day: '2026-01-05'" in stored and "at: '2026-01-05T10:30:00+00:00'" in stored
        assert client.get("/v1/healthz").status_code == 200


def test_a_nul_in_a_promoted_body_is_refused(world: World, client: TestClient, alice: str) -> None:
    assert_envelope(promote(world, client, alice, b"hello\x00world"), 422, "VALIDATION_FAILED")


# -- central files hold only what the backend accepts, as it stamped it -----------------------------
def test_result_files_drop_forged_fields_and_keep_the_numbers_read(
    world: World, client: TestClient, alice: str
) -> None:
    text = b"---\ntps: 12\nfingerprint: sha256:ab\nverdict: valid\nverified: true\nagent: someone\n---\nrun"
    world.write(alice, world.bucket_of("speedy"), {"r.md": text})
    answer = client.post("/v1/results", json={"agent_id": "speedy", "path": "r.md"}, headers=auth(alice))
    assert answer.status_code == 201, answer.text
    stored = central_text(world, f"results/{answer.json()['id']}-speedy.md")
    assert "verdict" not in stored and "verified" not in stored and "someone" not in stored
    assert "tps: 12.0" in stored and "agent: speedy" in stored
    index = "".join(
        central_text(world, f.path)
        for f in world.storage.list(world.spec.storage.central_bucket, ".collab/index/").items
    )
    assert "verified" not in index


def test_message_files_drop_fields_the_server_does_not_stamp(world: World, client: TestClient, alice: str) -> None:
    answer = promote(world, client, alice, b"---\nagent: someone-else\nvia: organizers\nchannel: general\n---\nhi")
    assert answer.status_code == 201, answer.text
    stored = central_text(world, f"message_board/{answer.json()['id']}-speedy.md")
    assert "via:" not in stored and "someone-else" not in stored and "author: speedy" in stored


# -- request bodies ---------------------------------------------------------------------------------
RAW = b'"\\ud800 half a pair"'


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", b'{"agent_id": "speedy", "body": ' + RAW + b"}"),
        ("/v1/messages", b'{"body": ' + RAW + b"}"),
        ("/v1/broadcasts", b'{"body": ' + RAW + b"}"),
        ("/v1/taskforces/plan/notes", b'{"agent_id": "speedy", "body": ' + RAW + b"}"),
        ("/v1/agents", b'{"agent_id": "ok", "\\udc00": 1}'),
    ],
)
def test_a_lone_surrogate_in_a_json_body_is_a_400_envelope(
    client: TestClient, alice: str, path: str, body: bytes
) -> None:
    headers = {**auth(alice), "content-type": "application/json"}
    answer = client.post(path, content=body, headers=headers)
    assert_envelope(answer, 400, "NOT_UTF8")
    assert "surrogate" in answer.json()["error"]["message"]


def test_a_nul_in_a_json_body_is_refused_and_never_written(world: World, client: TestClient, alice: str) -> None:
    answer = client.post("/v1/messages", json={"agent_id": "speedy", "body": "a\x00b"}, headers=auth(alice))
    assert_envelope(answer, 422, "VALIDATION_FAILED")
    assert "`body`" in answer.json()["error"]["message"]
    world.record.settle()  # the files of the writes before are written
    files = world.storage.list(world.spec.storage.central_bucket, "message_board/").items
    assert not any(b"\x00" in world.storage.read(world.spec.storage.central_bucket, f.path) for f in files)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 10_000])
def test_deeply_nested_json_is_a_validation_error(client: TestClient, alice: str, depth: int) -> None:
    body = b'{"agent_id": ' + b"[" * depth + b"]" * depth + b"}"
    answer = client.post("/v1/agents", content=body, headers={**auth(alice), "content-type": "application/json"})
    assert_envelope(answer, 422, "VALIDATION_FAILED")
    assert "nests deeper" in answer.json()["error"]["message"]


def test_a_malformed_content_length_is_a_400_envelope(client: TestClient, alice: str) -> None:
    answer = client.post("/v1/agents", content=b"{}", headers={**auth(alice), "content-length": "12abc"})
    assert_envelope(answer, 400, "MALFORMED_REQUEST")


@pytest.fixture(params=[HttpToolsProtocol, H11Protocol], ids=["httptools", "h11"])
def served(world: World, request: pytest.FixtureRequest) -> Iterator[int]:
    """The app served by uvicorn with each of the backend's protocol classes, on an ephemeral loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(world.app, http=request.param, log_level="critical", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _raw(port: int, request: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes, read until the server closes; the answer's head and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        with contextlib.suppress(OSError):  # the server may answer and close before it read everything
            conn.sendall(request)
        raw = b""
        try:
            while chunk := conn.recv(65536):
                raw += chunk
        except ConnectionResetError:
            pass
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
        b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 2_000_000 + b"\r\n\r\n",
        b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n" + (b"X-A: " + b"a" * 1000 + b"\r\n") * 300 + b"\r\n",
        b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 900) for i in range(300)),
        b"NOT-HTTP\x00\x01\r\n\r\n",
    ],
    ids=["content-length", "header-without-colon", "2-MB-header", "300-headers", "unfinished-head", "garbage"],
)
def test_a_request_the_server_cannot_parse_gets_the_envelope(served: int, request_bytes: bytes) -> None:
    head, body = _raw(served, request_bytes)
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, head[:200]
    assert json.loads(body)["error"]["code"] == "MALFORMED_REQUEST"
    assert _raw(served, b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0].startswith(
        b"HTTP/1.1 200"
    )  # and the server goes on


@pytest.mark.parametrize(("pad", "status"), [(20_000, b"201"), (70_000, b"413")])
def test_a_body_in_the_same_read_as_its_head_is_not_taken_for_a_long_head(
    world: World, served: int, pad: int, status: bytes
) -> None:
    alice = world.user("alice")
    world.prepare_agent(alice, "speedy")
    registered = _raw(served, b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 22\r\n"
                      b"Content-Type: application/json\r\nAuthorization: Bearer " + alice.encode()
                      + b'\r\n\r\n{"agent_id": "speedy"}')  # fmt: skip
    assert registered[0].startswith(b"HTTP/1.1 201"), registered
    payload = b'{"agent_id": "speedy", "body": "hello"' + b" " * pad + b"}"  # JSON's own whitespace
    head, body = _raw(
        served,
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        + b"Authorization: Bearer "
        + alice.encode()
        + b"\r\nContent-Length: %d\r\n\r\n" % len(payload)
        + payload,
    )
    assert head[9:12] == status, head[:200]  # the app's answer (a post, or its own body limit), not a 400
    assert (b'"BODY_TOO_LARGE"' in body) == (status == b"413")


def test_405_names_every_allowed_method(client: TestClient) -> None:
    answer = client.post("/v1/agents/speedy/follows/general")
    assert_envelope(answer, 405, "METHOD_NOT_ALLOWED")
    assert answer.headers["allow"] == "DELETE, PUT"
    assert client.delete("/v1/messages").headers["allow"] == "GET, POST"


def test_a_sync_of_a_missing_folder_is_source_not_found(client: TestClient, alice: str) -> None:
    for source in ("nothing-here/", "nothing.txt"):
        answer = client.post("/v1/artifacts/sync", json={"agent_id": "speedy", "source": source}, headers=auth(alice))
        assert_envelope(answer, 422, "SOURCE_NOT_FOUND")


# -- the OpenAPI document ---------------------------------------------------------------------------
def test_openapi_lists_each_error_status_with_its_codes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    register = document["paths"]["/v1/agents"]["post"]["responses"]
    assert set(register) == {"200", "201", "400", "401", "409", "413", "422", "429", "500", "503"}
    assert register["409"]["x-error-codes"] == ["AGENT_TAKEN"]
    assert register["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    health = document["paths"]["/v1/healthz"]["get"]["responses"]
    assert set(health) == {"200", "400", "500", "503"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
