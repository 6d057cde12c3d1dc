"""Property tests: whatever a participant writes into a promoted file's frontmatter or a request body
(dates, timestamps, lone surrogates, NUL, huge or deeply nested values, invalid UTF-8), the answer
is a success or a 4xx envelope, never a 5xx, and the writer goes on writing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_world import SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab_backend.middleware import MAX_JSON_DEPTH

SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True
)


@pytest.fixture
def lively(tmp_path: Path) -> Iterator[tuple[World, TestClient, str]]:
    text = SPEC_YAML
    for kind in ("raw_posts", "promotions"):
        text = text.replace(f"{kind}: {{limit: 5,", f"{kind}: {{limit: 100000,")
    world = World("local", tmp_path, make_spec(text), Clock())
    with TestClient(world.app, raise_server_exceptions=False) as client:
        token = world.user("alice", role="admin")
        world.agent(client, token, "speedy")
        client.put("/v1/taskforces/plan", json={"agent_id": "speedy", "path": "collab-handshake.txt"},
                   headers=auth(token))  # fmt: skip
        yield world, client, token


def assert_answered(response: Any) -> None:
    """A success, or a 4xx in the envelope; never a 5xx."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "hint"} and error["code"].isupper()


def assert_writer_alive(client: TestClient, token: str) -> None:
    health = client.get("/v1/healthz")
    assert health.status_code == 200, health.text
    posted = client.post("/v1/messages", json={"agent_id": "speedy", "body": "still writing"}, headers=auth(token))
    assert posted.status_code == 201, posted.text


# -- frontmatter: YAML spellings of every kind of value ---------------------------------------------
# Any code point, lone surrogates and NUL included, and those two often.
awkward_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "nul\x00here", "\x00", "\ufeff", "\u2028"]),
)
scalars = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.integers().map(str),
    st.integers(min_value=2**62, max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True)
    .map(repr)
    .map(lambda r: {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}.get(r, r)),
    awkward_text.map(json.dumps),  # a JSON string is a YAML double-quoted scalar, \\ud800 escapes and all
    st.sampled_from(["!!binary aGVsbG8=", "!!set {a, b}", "~", "yes", "0x1F", "1_000", "&a x", "!!str 3", "'x'"]),
    st.text("ab x", max_size=5000).map(lambda t: json.dumps(t)),  # long values
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(["a", "1", "2026-01-05", '"k"', "null"]), inner, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=12,
)
keys = st.sampled_from(["note", "date", "channel", "thread", "refs", "tps", "fingerprint", "status", "parents", "x"])


def _document(fields: dict[str, str], body: str) -> bytes:
    header = "".join(f"{key}: {value}\n" for key, value in fields.items())
    return f"---\n{header}---\n{body}".encode("utf-8", "surrogatepass")


def test_any_frontmatter_is_stored_or_refused_with_an_envelope(lively: tuple[World, TestClient, str]) -> None:
    world, client, token = lively
    counter = iter(range(10**6))

    @SETTINGS
    @given(fields=st.dictionaries(keys, values, max_size=5), body=awkward_text, as_result=st.booleans())
    def check(fields: dict[str, str], body: str, as_result: bool) -> None:
        path = f"f{next(counter)}.md"
        if as_result:
            fields = {"tps": "10", "fingerprint": "sha256:ab", **fields}
        (world.local.bucket_dir(world.bucket_of("speedy")) / path).write_bytes(_document(fields, body or "b"))
        route = "/v1/results" if as_result else "/v1/messages/promote"
        assert_answered(client.post(route, json={"agent_id": "speedy", "path": path}, headers=auth(token)))

    check()
    assert_writer_alive(client, token)


# -- request bodies ---------------------------------------------------------------------------------
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), awkward_text, st.text(max_size=3000)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(awkward_text, inner, max_size=4)),
    max_leaves=20,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "agent_id": st.one_of(st.just("speedy"), json_values),
        "body": st.one_of(awkward_text, json_values),
        "channel": st.one_of(st.just("general"), json_values),
        "refs": json_values,
        "name": json_values,
        "description": json_values,
        "model": json_values,
        "input_tokens": json_values,
        "source": json_values,
        "path": json_values,
    },
)
nested = st.integers(min_value=1, max_value=3 * MAX_JSON_DEPTH).map(lambda n: "[" * n + "]" * n)


def _body(draw_fields: dict[str, Any], extra: str | None, broken: bytes | None) -> bytes:
    if broken is not None:
        return broken
    text = json.dumps(draw_fields)  # ensure_ascii: a lone surrogate becomes a \\ud800 escape
    if extra is not None:
        text = text[:-1] + (", " if draw_fields else "") + f'"deep": {extra}}}'
    return text.encode()


ROUTES = [
    "/v1/messages", "/v1/broadcasts", "/v1/agents", "/v1/channels", "/v1/token-stats", "/v1/taskforces/plan/notes",
    "/v1/artifacts/sync", "/v1/messages/promote", "/v1/results", "/v1/jobs",
]  # fmt: skip


def test_any_json_body_gets_a_success_or_a_4xx_envelope(lively: tuple[World, TestClient, str]) -> None:
    _, client, token = lively

    @SETTINGS
    @given(
        route=st.sampled_from(ROUTES),
        draw_fields=fields,
        extra=st.one_of(st.none(), nested),
        broken=st.one_of(st.none(), st.binary(max_size=64), st.just(b'{"body": "\xed\xa0\x80"}')),
    )
    def check(route: str, draw_fields: dict[str, Any], extra: str | None, broken: bytes | None) -> None:
        headers = {**auth(token), "content-type": "application/json"}
        assert_answered(client.post(route, content=_body(draw_fields, extra, broken), headers=headers))

    check()
    assert_writer_alive(client, token)
