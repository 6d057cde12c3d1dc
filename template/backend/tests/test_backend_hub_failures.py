"""The backend with the Hub unreachable, refusing or hanging: no 500, no dead writer, a bounded wait.

The fake fails as huggingface_hub does (tests/hub/test_fake_contract.py holds it to that): a lost
connection is httpx2's `ConnectError`, a hung one (under the kit's timeouts) its `ReadTimeout`,
neither of them an `OSError`; a refused bucket write that adds files is hf_xet's `ConnectionError`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_world import Clock, World, auth, make_spec
from fastapi.testclient import TestClient

from collab_backend.errors import APIError
from collab_backend.identity import CACHE_SECONDS, HubIdentity
from collab_backend.jobs.base import LauncherError
from collab_backend.jobs.hub import HubLauncher
from collab_backend.record.entries import MessageEntry
from collab_backend.record.state import State
from collab_backend.storage import AccessDenied, Add, Delete, NotFound, StorageError, Unavailable
from collab_backend.storage.hub import HubStorage
from collab_testing.hub import ADMIN_TOKEN, FakeHub

NO_ANSWER = ["fail_network", "fail_timeout"]
READS = {
    "bucket_info": lambda s: s.bucket_exists("acme/main"),
    "list_bucket_tree": lambda s: s.list("acme/main"),
    "get_bucket_paths_info": lambda s: s.stat("acme/main", ["a"]),
    "download_bucket_files": lambda s: s.read("acme/main", "a"),
}


@pytest.fixture
def hub(fake_hub: FakeHub) -> HubStorage:
    fake_hub.create_bucket("acme/main", token=ADMIN_TOKEN)
    storage = HubStorage(fake_hub, token=ADMIN_TOKEN)
    storage.batch("acme/main", [Add("a", b"1")])
    return storage


@pytest.mark.parametrize("switch", NO_ANSWER)
@pytest.mark.parametrize("method", [*READS, "batch_bucket_files"])
def test_no_answer_is_unavailable_on_every_call(hub: HubStorage, fake_hub: FakeHub, method: str, switch: str) -> None:
    getattr(fake_hub, switch)(method)
    with pytest.raises(Unavailable):
        if method == "batch_bucket_files":
            hub.batch("acme/main", [Delete("a")])
        else:
            READS[method](hub)


@pytest.mark.parametrize("switch", NO_ANSWER)
def test_a_write_that_adds_files_without_an_answer_is_unavailable(
    hub: HubStorage, fake_hub: FakeHub, switch: str
) -> None:
    getattr(fake_hub, switch)("batch_bucket_files")
    with pytest.raises(Unavailable):
        hub.batch("acme/main", [Add("b", b"2")])


def test_a_refused_xet_write_reads_as_denied_or_not_found(hub: HubStorage, fake_hub: FakeHub) -> None:
    fake_hub.add_user("reader", "hf_reader", {"acme": "read"})
    with pytest.raises(AccessDenied):
        HubStorage(fake_hub, token="hf_reader").batch("acme/main", [Add("b", b"2")])
    with pytest.raises(NotFound):
        hub.batch("acme/gone", [Add("b", b"2")])
    fake_hub.fail("batch_bucket_files", 429)
    with pytest.raises(Unavailable):  # a rate limit passes
        hub.batch("acme/main", [Add("b", b"2")])


def test_a_rejected_request_is_a_storage_error_not_worth_retrying(hub: HubStorage, fake_hub: FakeHub) -> None:
    fake_hub.fail("get_bucket_paths_info", 422)
    with pytest.raises(StorageError) as caught:
        hub.stat("acme/main", ["a"])
    assert not isinstance(caught.value, Unavailable | AccessDenied | NotFound)


def test_a_bug_in_the_client_is_not_dressed_up_as_a_hub_failure(fake_hub: FakeHub) -> None:
    class Broken(FakeHub):
        def bucket_info(self, bucket_id: str, *, token: str | bool | None = None) -> None:
            raise KeyError("a bug")

    with pytest.raises(KeyError):
        HubStorage(Broken(), token=ADMIN_TOKEN).bucket_exists("acme/main")


@pytest.mark.parametrize(("switch", "status"), [("fail_network", None), ("fail_timeout", None), ("fail", 503)])
def test_identity_without_an_answer_is_role_lookup_failed(fake_hub: FakeHub, switch: str, status: int | None) -> None:
    getattr(fake_hub, switch)("whoami", *([status] if status else []))
    with pytest.raises(APIError) as caught:
        HubIdentity(fake_hub).identify(ADMIN_TOKEN)
    assert caught.value.code == "ROLE_LOOKUP_FAILED" and caught.value.status == 503
    assert HubIdentity(fake_hub).identify(ADMIN_TOKEN).user == "organizer"  # the switch fired once


def test_the_event_loop_answers_a_token_only_from_a_fresh_whoami(fake_hub: FakeHub) -> None:
    now = [0.0]
    identity = HubIdentity(fake_hub, clock=lambda: now[0])
    assert identity.cached(ADMIN_TOKEN) is None  # never looked up: a worker thread asks the Hub
    calls = fake_hub.calls["whoami"]
    assert identity.identify(ADMIN_TOKEN).user == "organizer"
    assert identity.cached(ADMIN_TOKEN) is not None and fake_hub.calls["whoami"] == calls + 1
    assert identity.cached("hf_nobody") is None
    now[0] = CACHE_SECONDS + 1
    assert identity.cached(ADMIN_TOKEN) is None  # stale: looked up again off the loop
    assert fake_hub.calls["whoami"] == calls + 1  # `cached` never calls the Hub


def test_identity_with_a_refused_token_is_unauthenticated(fake_hub: FakeHub) -> None:
    with pytest.raises(APIError) as caught:
        HubIdentity(fake_hub).identify("hf_nobody")
    assert caught.value.code == "UNAUTHENTICATED"


def test_the_launcher_reports_no_answer_as_a_launcher_error(fake_hub: FakeHub) -> None:
    fake_hub.create_bucket("acme-admin/audit", token=ADMIN_TOKEN)
    launcher = HubLauncher(
        fake_hub, HubStorage(fake_hub, token=ADMIN_TOKEN), token=ADMIN_TOKEN, namespace="acme", image="python:3.12",
        flavor="cpu-basic", state_bucket="acme-admin/audit",
    )  # fmt: skip
    fake_hub.fail_timeout("list_jobs")
    with pytest.raises(LauncherError, match="could not be reached"):
        launcher.find("j1")
    fake_hub.fail_network("inspect_job")
    with pytest.raises(LauncherError, match="could not be reached"):
        launcher.poll("j1", "job-1")


# -- the API and the writer ----------------------------------------------------------------------


@pytest.fixture
def hub_world(tmp_path: Path, clock: Clock) -> World:
    world = World("hub", tmp_path, make_spec(), clock)  # the failure switches are the Hub fake's
    world.record.sleep = lambda seconds: None  # the writer's retries, without their waits
    return world


@pytest.mark.parametrize("switch", NO_ANSWER)
@pytest.mark.parametrize("method", ["whoami", "bucket_info", "get_bucket_paths_info", "download_bucket_files"])
def test_an_unreachable_hub_answers_503_with_retry_after_never_500(hub_world: World, method: str, switch: str) -> None:
    with TestClient(hub_world.app, raise_server_exceptions=False) as client:
        token = hub_world.user("alice")
        hub_world.prepare_agent(token, "speedy")
        getattr(hub_world.hub, switch)(method, times=10)
        response = client.post("/v1/agents", json={"agent_id": "speedy"}, headers=auth(token))
        if hub_world.hub.calls[method] == 0:  # registration did not need this call: nothing to show
            pytest.skip(f"registration makes no {method} call")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] in ("STORAGE_UNAVAILABLE", "ROLE_LOOKUP_FAILED")
        assert int(response.headers["Retry-After"]) > 0


def _message(state: State, seq: int, ts: float) -> MessageEntry:
    return MessageEntry(seq, ts, f"m{seq}", "speedy", "alice", "general", "hello")


@pytest.mark.parametrize("switch", [*NO_ANSWER, "refused"])
def test_the_writer_survives_a_hub_without_answer_or_refusing(hub_world: World, switch: str) -> None:
    with TestClient(hub_world.app, raise_server_exceptions=False) as client:
        token = hub_world.user("alice")
        hub_world.agent(client, token, "speedy")
        hub_world.record.settle()  # the registration's files are written before the store fails
        if switch == "refused":
            hub_world.hub.fail("batch_bucket_files", 403, times=10)
        else:
            getattr(hub_world.hub, switch)("batch_bucket_files", times=10)
        calls = hub_world.hub.calls["batch_bucket_files"]
        with pytest.raises(APIError) as refused:
            hub_world.record.write(_message, timeout=10)
        assert refused.value.code == ("STORAGE_DENIED" if switch == "refused" else "STORAGE_UNAVAILABLE")
        tries = hub_world.hub.calls["batch_bucket_files"] - calls
        assert tries == (1 if switch == "refused" else 5)  # a refusal is not retried; no answer is, 4 times
        hub_world.hub.reset_switches()
        assert hub_world.record.write(_message, timeout=10).seq > 0  # the writer is alive
        assert client.get("/v1/healthz").status_code == 200
