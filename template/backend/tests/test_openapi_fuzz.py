"""A bounded schemathesis run over the backend's own OpenAPI document, in process and offline.

Every operation gets requests generated from its schema, both fitting it and breaking it, sent
with a participant's token (half of them naming the participant's registered agent, so they get
past the registration check). Each answer must not be a 5xx, must use a status the document lists
for the operation, and must match the schema the document gives for it (the error envelope).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from backend_world import SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.generation.modes import GenerationMode

EXAMPLES = 10  # per operation: about 40 operations, so about 400 requests


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, TestClient, str]]:
    text = SPEC_YAML
    for kind in ("raw_posts", "promotions"):
        text = text.replace(f"{kind}: {{limit: 5,", f"{kind}: {{limit: 100000,")
    world = World("local", tmp_path_factory.mktemp("fuzz"), make_spec(text), Clock())
    with TestClient(world.app, raise_server_exceptions=False) as client:
        token = world.user("alice", role="admin")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), {"post.md": b"hello", "out/a.txt": b"a"})
        yield world, client, token


def _schema(world: World) -> Any:
    return schemathesis.openapi.from_dict(world.app.openapi())


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _send(client: TestClient, token: str, case: Any, own_agent: bool) -> Any:
    if own_agent:
        if "agent_id" in (case.path_parameters or {}):
            case.path_parameters["agent_id"] = "speedy"
        if isinstance(case.body, dict) and "agent_id" in case.body:
            case.body["agent_id"] = "speedy"
    sent = case.as_transport_kwargs(base_url="http://testserver")
    headers = {**(sent.get("headers") or {}), **auth(token)}
    body = {key: sent[key] for key in ("json", "data", "content") if key in sent}
    if "data" in body:  # a non-JSON body: raw bytes or text
        raw = body.pop("data")
        body["content"] = raw.encode() if isinstance(raw, str) else raw
    return client.request(case.method, case.formatted_path, headers=headers, params=sent.get("params"), **body)


def test_every_operation_answers_as_its_document_says(api: tuple[World, TestClient, str]) -> None:
    world, client, token = api
    schema = _schema(world)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 35
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=strategy, own_agent=st.booleans())
        def check(case: Any, own_agent: bool) -> None:
            response = _send(client, token, case, own_agent)
            case.validate_response(response, checks=CHECKS)

        check()
    assert client.get("/v1/healthz").status_code == 200
