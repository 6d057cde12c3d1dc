"""The record's single writer: it survives any batch, says when it cannot write, and decides every
check-then-write itself, so concurrent requests cannot write what one request would not."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from backend_world import SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient

from collab_backend import naming
from collab_backend.errors import APIError
from collab_backend.record import store
from collab_backend.record.entries import MessageEntry
from collab_backend.record.state import State
from collab_backend.storage import Unavailable

BURST = 16
# The writer is the same over either adapter; the Hub fake counts calls, so the bounds are checked there.
pytestmark = pytest.mark.parametrize("storage_kind", ["hub"])


@pytest.fixture
def roomy(storage_kind: str, tmp_path: Path, clock: Clock) -> World:
    text = (
        SPEC_YAML.replace("raw_posts: {limit: 5,", "raw_posts: {limit: 100,")
        .replace("promotions: {limit: 5,", "promotions: {limit: 100,")
        .replace("registrations: {limit: 3,", "registrations: {limit: 100,")
    )
    return World(storage_kind, tmp_path, make_spec(text), clock)


@pytest.fixture
def api(roomy: World) -> Iterator[TestClient]:
    with TestClient(roomy.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def alice(roomy: World, api: TestClient) -> str:
    token = roomy.user("alice")
    roomy.agent(api, token, "speedy")
    return token


def _bad_entry(state: State, seq: int, ts: float) -> MessageEntry:
    """An entry the door would have refused: a value JSON cannot hold."""
    return MessageEntry(seq, ts, f"m{seq}", "speedy", "alice", "general", "x", client_fields={"when": object()})


def test_an_entry_that_cannot_be_stored_fails_alone_and_the_writer_goes_on(roomy: World, alice: str) -> None:
    before = roomy.record.state.seq
    with pytest.raises(APIError) as refused:
        roomy.record.write(_bad_entry, timeout=5)
    assert refused.value.code == "INTERNAL" and roomy.record.state.seq == before
    assert roomy.record.problem() is None
    with ThreadPoolExecutor(4) as pool:  # in one batch with good writes: only the bad one is refused
        bad = pool.submit(roomy.record.write, _bad_entry, 5)
        good = [pool.submit(roomy.record.write, _message(f"ok {i}"), 5) for i in range(3)]
        assert [f.result().body for f in good] == ["ok 0", "ok 1", "ok 2"]
        with pytest.raises(APIError):
            bad.result()


def _message(body: str) -> Callable[[State, int, float], MessageEntry]:
    def build(state: State, seq: int, ts: float) -> MessageEntry:
        return MessageEntry(seq, ts, f"m{seq}", "speedy", "alice", "general", body)

    return build


def test_a_storage_bug_in_a_batch_refuses_that_batch_and_health_says_so(
    roomy: World, api: TestClient, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = roomy.storage.batch
    monkeypatch.setattr(roomy.storage, "batch", lambda bucket, ops: [][1])  # an adapter bug: IndexError
    before = roomy.record.state.seq
    refused = api.post("/v1/messages", json={"agent_id": "speedy", "body": "lost"}, headers=auth(alice))
    assert refused.status_code == 500 and refused.json()["error"]["code"] == "INTERNAL"
    assert roomy.record.state.seq == before  # rolled back
    health = api.get("/v1/healthz")
    assert health.status_code == 503 and "last index write failed" in health.json()["error"]["message"]
    monkeypatch.setattr(roomy.storage, "batch", real)
    posted = api.post("/v1/messages", json={"agent_id": "speedy", "body": "kept"}, headers=auth(alice))
    assert posted.status_code == 201 and api.get("/v1/healthz").status_code == 200


def test_a_storage_outage_makes_health_fail_until_a_write_succeeds(
    roomy: World, api: TestClient, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = roomy.storage.batch
    monkeypatch.setattr(roomy.record, "sleep", lambda _: None)

    def down(bucket: str, ops: Any) -> None:
        raise Unavailable("the store is down")

    monkeypatch.setattr(roomy.storage, "batch", down)
    refused = api.post("/v1/messages", json={"agent_id": "speedy", "body": "x"}, headers=auth(alice))
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert "the store is down" in api.get("/v1/healthz").json()["error"]["message"]
    monkeypatch.setattr(roomy.storage, "batch", real)
    assert api.post("/v1/messages", json={"agent_id": "speedy", "body": "y"}, headers=auth(alice)).status_code == 201
    assert api.get("/v1/healthz").json()["writer"] == "ok"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the stop is the point
def test_a_stopped_writer_fails_health_and_writes_at_once(
    roomy: World, api: TestClient, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fatal(batch: Any) -> None:
        raise SystemExit("stopped for the test")

    monkeypatch.setattr(roomy.record, "_commit", fatal)
    started = time.monotonic()
    first = api.post("/v1/messages", json={"agent_id": "speedy", "body": "x"}, headers=auth(alice))
    second = api.post("/v1/messages", json={"agent_id": "speedy", "body": "y"}, headers=auth(alice))
    assert time.monotonic() - started < 10  # answered, not left waiting for a minute
    assert [r.json()["error"]["code"] for r in (first, second)] == ["STORAGE_UNAVAILABLE"] * 2
    health = api.get("/v1/healthz")
    assert health.status_code == 503 and "stopped for the test" in health.json()["error"]["message"]


def test_a_stalled_writer_fails_health_with_the_reason(roomy: World, api: TestClient, alice: str) -> None:
    inside, release = threading.Event(), threading.Event()

    def stuck(state: State, seq: int, ts: float) -> MessageEntry:
        inside.set()
        release.wait(10)
        return _message("late")(state, seq, ts)

    roomy.record.stall_after = 0.0
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(roomy.record.write, stuck, 15)
        assert inside.wait(10)
        health = api.get("/v1/healthz")
        release.set()
        assert late.result().body == "late"
    assert health.status_code == 503 and "stuck on one batch" in health.json()["error"]["message"]
    assert api.get("/v1/healthz").status_code == 200


# -- group commit: no wait for company, batches from what queued meanwhile ---------------------------
def _held(roomy: World, then: Callable[[ThreadPoolExecutor], list[Any]], waiting: int) -> list[Any]:
    """Hold the writer inside one build, run `then`, release once `waiting` requests queued behind it."""
    inside, release = threading.Event(), threading.Event()

    def hold(state: State, seq: int, ts: float) -> MessageEntry:
        inside.set()
        release.wait(10)
        return _message("hold")(state, seq, ts)

    with ThreadPoolExecutor(waiting + 1) as pool:
        held = pool.submit(roomy.record.write, hold, 15)
        assert inside.wait(10)
        futures = then(pool)
        deadline = time.monotonic() + 10
        while roomy.record._queue.qsize() < waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        assert roomy.record._queue.qsize() == waiting
        release.set()
        held.result()
        return [f.result() for f in futures]


def test_writes_queued_during_a_commit_form_the_next_batches(roomy: World, alice: str) -> None:
    record = roomy.record
    record.max_batch = 8
    before, commits = len(record.segments), record.commits
    lone = record.write(_message("lone"), 5)  # an idle writer: a batch of one
    written = _held(roomy, lambda pool: [pool.submit(record.write, _message(f"q{i}"), 5) for i in range(11)], 11)
    assert [e.body for e in written] == [f"q{i}" for i in range(11)]  # each answered with its own entry
    sizes = [s.last - s.first + 1 for s in record.segments[before:]]
    assert sizes == [1, 1, 8, 3]  # the lone write, the held one, then the queue in batches of at most max_batch
    assert record.commits - commits == 4 and record.segments[before].first == lone.seq
    for segment in record.segments[before:]:  # each batch is one index segment holding its entries
        lines = roomy.storage.read(roomy.spec.storage.central_bucket, segment.path).splitlines()
        assert len(lines) == segment.last - segment.first + 1


def test_a_batch_with_a_failing_entry_writes_the_others_and_the_writer_goes_on(roomy: World, alice: str) -> None:
    record = roomy.record

    def then(pool: ThreadPoolExecutor) -> list[Any]:
        return [pool.submit(_outcome, record, build) for build in (_message("a"), _bad_entry, _message("b"))]

    outcomes = _held(roomy, then, 3)
    assert outcomes[0] == "a" and outcomes[2] == "b" and outcomes[1] == "INTERNAL"
    assert record.segments[-1].last - record.segments[-1].first + 1 == 2  # one batch: the two good entries
    assert record.write(_message("after"), 5).body == "after" and record.problem() is None


def _outcome(record: Any, build: Callable[[State, int, float], MessageEntry]) -> str:
    try:
        return record.write(build, 5).body  # type: ignore[no-any-return]
    except APIError as error:
        return error.code


# -- every check-then-write is decided in the writer ------------------------------------------------
def _burst(roomy: World, call: Callable[[], Any]) -> list[Any]:
    """Run BURST calls that all pass their checks before the writer takes any of them.

    The writer is held inside a build until every call is queued, so a check made outside the
    writer would let each of them through.
    """
    inside, release = threading.Event(), threading.Event()

    def hold(state: State, seq: int, ts: float) -> MessageEntry:
        inside.set()
        release.wait(10)
        return _message("hold")(state, seq, ts)

    with ThreadPoolExecutor(BURST + 1) as pool:
        held = pool.submit(roomy.record.write, hold, 15)
        assert inside.wait(10)
        calls = [pool.submit(call) for _ in range(BURST)]
        deadline = time.monotonic() + 10
        while roomy.record._queue.qsize() < BURST and time.monotonic() < deadline:
            time.sleep(0.005)
        release.set()
        held.result()
        return [c.result() for c in calls]


def test_concurrent_promotions_of_one_file_make_one_message(roomy: World, api: TestClient, alice: str) -> None:
    roomy.write(alice, roomy.bucket_of("speedy"), {"post.md": b"one post"})
    before = len(roomy.record.state.messages)
    answers = _burst(roomy, lambda: api.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "post.md"},
                                             headers=auth(alice)))  # fmt: skip
    assert sorted(r.status_code for r in answers) == [200] * (BURST - 1) + [201]
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(roomy.record.state.messages) == before + 2  # the held write and the one promotion


def test_concurrent_submissions_of_one_result_make_one_result(roomy: World, api: TestClient, alice: str) -> None:
    roomy.write(alice, roomy.bucket_of("speedy"), {"r.md": b"---\ntps: 10\nfingerprint: sha256:ab\n---\nrun"})
    answers = _burst(roomy, lambda: api.post("/v1/results", json={"agent_id": "speedy", "path": "r.md"},
                                             headers=auth(alice)))  # fmt: skip
    assert sorted(r.status_code for r in answers) == [200] * (BURST - 1) + [201]
    assert len(roomy.record.state.results) == 1


def test_concurrent_follows_write_one_entry(roomy: World, api: TestClient, alice: str) -> None:
    before = roomy.record.state.seq
    answers = _burst(roomy, lambda: api.put("/v1/agents/speedy/follows/results", headers=auth(alice)))
    assert {r.status_code for r in answers} == {200}
    assert roomy.record.state.seq == before + 2  # the held write and one follow


def test_concurrent_first_registrations_bind_once(roomy: World, api: TestClient) -> None:
    bob = roomy.user("bob")
    roomy.prepare_agent(bob, "racer")
    answers = _burst(roomy, lambda: api.post("/v1/agents", json={"agent_id": "racer"}, headers=auth(bob)))
    assert sorted(r.status_code for r in answers) == [200] * (BURST - 1) + [201]
    assert sum(1 for e in roomy.record.state.log if getattr(e, "agent_id", None) == "racer") == 1


def test_concurrent_syncs_of_one_file_record_one_copy(roomy: World, api: TestClient, alice: str) -> None:
    roomy.write(alice, roomy.bucket_of("speedy"), {"out/a.txt": b"a"})
    before = roomy.record.state.seq
    answers = _burst(roomy, lambda: api.post("/v1/artifacts/sync", json={"agent_id": "speedy", "source": "out/"},
                                             headers=auth(alice)))  # fmt: skip
    assert {r.status_code for r in answers} == {200}
    assert roomy.record.state.seq == before + 2


# -- what a participant can make the record hold is bounded -----------------------------------------
def test_re_registration_writes_nothing_and_costs_no_storage_call(roomy: World, api: TestClient, alice: str) -> None:
    roomy.record.settle()  # the registration's files are written by now
    before, calls = roomy.record.state.seq, sum(roomy.hub.calls.values())
    for _ in range(100):
        again = api.post("/v1/agents", json={"agent_id": "speedy"}, headers=auth(alice))
        assert again.status_code == 200 and again.json()["agent_id"] == "speedy"
    assert roomy.record.state.seq == before and sum(roomy.hub.calls.values()) == calls


def test_asking_for_a_follow_that_holds_writes_nothing(roomy: World, api: TestClient, alice: str) -> None:
    assert api.put("/v1/agents/speedy/follows/results", headers=auth(alice)).status_code == 200
    before = roomy.record.state.seq
    for _ in range(20):
        assert api.put("/v1/agents/speedy/follows/results", headers=auth(alice)).status_code == 200
    assert roomy.record.state.seq == before


def test_the_same_taskforce_readme_again_writes_nothing(roomy: World, api: TestClient, alice: str) -> None:
    roomy.write(alice, roomy.bucket_of("speedy"), {"tf.md": b"# plan"})
    first = api.put("/v1/taskforces/plan", json={"agent_id": "speedy", "path": "tf.md"}, headers=auth(alice))
    assert first.status_code == 201
    before = roomy.record.state.seq
    again = api.put("/v1/taskforces/plan", json={"agent_id": "speedy", "path": "tf.md"}, headers=auth(alice))
    assert again.status_code == 200 and roomy.record.state.seq == before


# -- the file writer: files follow the answer, a failed round is written again ---------------------
def test_a_writes_files_follow_its_answer_and_a_failed_round_is_tried_again(
    roomy: World, api: TestClient, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "RETRY_FILES_AFTER", 0.05)
    monkeypatch.setattr(roomy.record, "sleep", lambda _: None)
    central, real = roomy.spec.storage.central_bucket, roomy.storage.batch

    def board_down(bucket: str, ops: Any) -> None:
        if any(op.path.startswith("message_board/") for op in ops):
            raise Unavailable("the store refuses the board's files")
        real(bucket, ops)

    monkeypatch.setattr(roomy.storage, "batch", board_down)
    posted = api.post("/v1/messages", json={"agent_id": "speedy", "body": "durable"}, headers=auth(alice))
    assert posted.status_code == 201  # durable in the index: the files' failure refuses nothing
    path = naming.message_path(posted.json()["id"], "speedy")
    roomy.record.settle(10)
    assert roomy.storage.stat(central, [path]) == {}
    assert roomy.record.files_confirmed < roomy.record.state.seq  # its segment is not merged meanwhile
    assert api.get("/v1/healthz").status_code == 200  # the write is durable; the files only lag
    monkeypatch.setattr(roomy.storage, "batch", real)
    deadline = time.monotonic() + 10
    while not roomy.storage.stat(central, [path]) and time.monotonic() < deadline:  # no other write needed
        time.sleep(0.02)
    assert roomy.storage.read(central, path).decode().endswith("durable")
    roomy.record.settle(10)
    assert roomy.record.files_confirmed == roomy.record.state.seq


def test_a_stopped_file_writer_fails_health_and_file_writes_at_once(roomy: World, api: TestClient) -> None:
    thread = roomy.record._file_thread
    assert thread is not None
    roomy.record._files.put(None)  # the file writer ends, as after a bug that escaped it
    thread.join(10)
    health = api.get("/v1/healthz")
    assert health.status_code == 503 and "file writer" in health.json()["error"]["message"]
    with pytest.raises(APIError) as refused:
        roomy.record.write_files({"results/x.json": b"{}"}, timeout=5)
    assert refused.value.code == "STORAGE_UNAVAILABLE"


def test_a_request_on_the_event_loop_waits_for_the_writer_no_longer_than_its_timeout(
    roomy: World, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "POLL", 0.05)
    inside, release = threading.Event(), threading.Event()

    def stuck(state: State, seq: int, ts: float) -> MessageEntry:
        inside.set()
        release.wait(10)
        return _message("late")(state, seq, ts)

    started = time.monotonic()
    try:
        with pytest.raises(APIError) as late:
            asyncio.run(roomy.record.write_async(stuck, timeout=0.3))
        assert inside.is_set() and time.monotonic() - started < 5
        assert late.value.code == "STORAGE_UNAVAILABLE" and "did not answer" in late.value.message
    finally:
        release.set()
    assert asyncio.run(roomy.record.write_async(_message("next"), timeout=10)).body == "next"


def test_files_that_wait_too_long_fail_health(
    roomy: World, api: TestClient, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "RETRY_FILES_AFTER", 0.05)
    monkeypatch.setattr(roomy.record, "sleep", lambda _: None)
    real = roomy.storage.batch

    def board_down(bucket: str, ops: Any) -> None:
        if any(op.path.startswith("message_board/") for op in ops):
            raise Unavailable("the store refuses the board's files")
        real(bucket, ops)

    monkeypatch.setattr(roomy.storage, "batch", board_down)
    roomy.record.stall_after = 0.0
    assert api.post("/v1/messages", json={"agent_id": "speedy", "body": "x"}, headers=auth(alice)).status_code == 201
    roomy.record.settle(10)
    health = api.get("/v1/healthz")
    assert health.status_code == 503 and "waited" in health.json()["error"]["message"]
    monkeypatch.setattr(roomy.storage, "batch", real)
    deadline = time.monotonic() + 10
    while api.get("/v1/healthz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api.get("/v1/healthz").status_code == 200


def test_the_event_loop_has_at_most_writes_in_flight_waiting_for_the_writer_and_the_rest_wait_their_turn(
    roomy: World, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, release = threading.Event(), threading.Event()
    built: list[str] = []
    handed = 0
    enqueue = roomy.record._enqueue

    def counted(build: Any) -> Any:
        nonlocal handed
        handed += 1
        return enqueue(build)

    monkeypatch.setattr(roomy.record, "_enqueue", counted)

    def held(body: str) -> Callable[[State, int, float], MessageEntry]:
        def build(state: State, seq: int, ts: float) -> MessageEntry:
            built.append(body)
            if body == "0":
                inside.set()
                release.wait(10)
            return _message(body)(state, seq, ts)

        return build

    async def burst() -> list[str]:
        count = 3 * store.WRITES_IN_FLIGHT
        writes = [asyncio.create_task(roomy.record.write_async(held(str(i)))) for i in range(count)]
        for _ in range(1000):  # the writer holds the first; the slots fill (10 s at most)
            if inside.is_set() and handed >= store.WRITES_IN_FLIGHT:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # and no more are handed meanwhile
        waiting = handed
        with pytest.raises(APIError) as late:  # one more, behind them all: its timeout counts the wait for a slot
            await roomy.record.write_async(held("late"), timeout=0.3)
        assert late.value.code == "STORAGE_UNAVAILABLE" and "did not answer" in late.value.message
        release.set()
        done = await asyncio.gather(*writes)
        assert waiting == store.WRITES_IN_FLIGHT  # handed to the writer: only as many as there are slots
        return [entry.body for entry in done]

    try:
        bodies = asyncio.run(burst())
    finally:
        release.set()
    assert bodies == [str(i) for i in range(3 * store.WRITES_IN_FLIGHT)]  # every one written, each answered its own
    assert sorted(built, key=int) == bodies
    again = asyncio.run(roomy.record.write_async(_message("from another loop")))  # the bound belongs to each loop
    assert again.body == "from another loop"
