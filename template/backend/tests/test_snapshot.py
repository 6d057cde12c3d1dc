"""Snapshots of the lookups: a restart from one answers as a full replay of the index does, and a snapshot that is
missing, torn, from another version, from another record or ahead of its index is never trusted."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backend_world import SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient

from collab_backend.record import snapshot
from collab_backend.record.entries import MessageEntry
from collab_backend.record.state import State
from collab_backend.record.store import MERGE_AT, Record
from collab_backend.storage import AccessDenied, Add, Delete
from collab_testing.hub import ADMIN_TOKEN

TOKENS = {"alice": "", "bob": ""}


@pytest.fixture
def roomy(storage_kind: str, tmp_path: Path, clock: Clock) -> World:
    text = SPEC_YAML.replace("raw_posts: {limit: 5,", "raw_posts: {limit: 500,").replace(
        "promotions: {limit: 5,", "promotions: {limit: 500,"
    )
    return World(storage_kind, tmp_path, make_spec(text), clock)


def _fill(world: World, client: TestClient, start: int, count: int) -> None:
    """Posts with mentions and threads, follows, results with a verdict, usage reports."""
    alice, bob = TOKENS["alice"], TOKENS["bob"]
    first = None
    for i in range(start, start + count):
        token, agent = (alice, "speedy") if i % 2 else (bob, "racer")
        body = {"agent_id": agent, "body": f"note {i} @speedy @racer"}
        if first and i % 3 == 0:
            body["thread"] = first
        posted = client.post("/v1/messages", json=body, headers=auth(token))
        assert posted.status_code == 201, posted.text
        first = first or posted.json()["id"]
    client.put("/v1/agents/speedy/follows/results", headers=auth(alice))
    result_file = f"---\ntps: {start + 10}\nfingerprint: sha256:ab\n---\nrun".encode()
    world.write(alice, world.bucket_of("speedy"), {f"r{start}.md": result_file})
    result = client.post("/v1/results", json={"agent_id": "speedy", "path": f"r{start}.md"}, headers=auth(alice))
    assert result.status_code == 201, result.text
    verdict = client.put(f"/v1/results/{result.json()['id']}/verdict", json={"verdict": "valid"},
                         headers=auth(ADMIN_TOKEN))  # fmt: skip
    assert verdict.status_code == 200, verdict.text
    usage = {"agent_id": "racer", "model": "m", "input_tokens": start, "output_tokens": 1}
    assert client.post("/v1/token-stats", json=usage, headers=auth(bob)).status_code == 201


def _open(world: World, *, snapshot_every: int = 100_000) -> Record:
    record = Record(world.storage, world.spec.storage.central_bucket, clock=world.clock, snapshot_every=snapshot_every)
    record.open()
    return record


def _snapshots(world: World) -> list[str]:
    return [i.path for i in world.storage.list(world.spec.storage.central_bucket, snapshot.PREFIX).items]


def _full_replay(world: World) -> State:
    """The state rebuilt from the index alone (the snapshots set aside, then put back)."""
    central = world.spec.storage.central_bucket
    kept = {p: world.storage.read(central, p) for p in _snapshots(world)}
    world.storage.batch(central, [Delete(p) for p in kept])
    record = _open(world, snapshot_every=0)
    record.close()  # writes no snapshot
    state = record.state
    world.storage.batch(central, [Add(p, d) for p, d in kept.items()])
    return state


@pytest.fixture
def filled(roomy: World) -> World:
    """A record of two agents, closed cleanly (a snapshot), then written on and left without one."""
    roomy.record.snapshot_every = 100_000
    for name in TOKENS:
        TOKENS[name] = roomy.user(name)
    with TestClient(roomy.app) as client:
        roomy.agent(client, TOKENS["alice"], "speedy")
        roomy.agent(client, TOKENS["bob"], "racer")
        _fill(roomy, client, 0, 12)
    assert len(_snapshots(roomy)) == 1  # the clean stop left one
    roomy.restarted().record.snapshot_every = 0  # the next run stops without one: a crash, as far as it goes
    with TestClient(roomy.app) as client:
        assert roomy.record._snapshot_seq > 0  # it started from the snapshot
        _fill(roomy, client, 100, 7)
    return roomy


def test_a_restart_from_a_snapshot_and_the_tail_equals_a_full_replay(filled: World) -> None:
    record = _open(filled)
    try:
        assert 0 < record._snapshot_seq < record.state.seq  # the snapshot, then the index after it
        assert [e.seq for e in record.state.log] == list(range(1, record.state.seq + 1))  # none lost, none twice
        assert record.state == _full_replay(filled)
    finally:
        record.close()


def test_the_api_answers_the_same_from_a_snapshot(filled: World) -> None:
    paths = ["/v1/messages?limit=200", "/v1/inbox/speedy?limit=200", "/v1/digest/racer", "/v1/leaderboard",
             "/v1/token-stats", "/v1/stats", "/v1/agents/speedy/follows"]  # fmt: skip
    filled.restarted().record.snapshot_every = 100_000
    with TestClient(filled.app) as client:
        from_snapshot = [client.get(p).json() for p in paths]
        assert filled.record._snapshot_seq > 0
    central = filled.spec.storage.central_bucket
    filled.storage.batch(central, [Delete(p) for p in _snapshots(filled)])
    filled.restarted().record.snapshot_every = 0
    with TestClient(filled.app) as client:
        assert filled.record._snapshot_seq == 0
        assert [client.get(p).json() for p in paths] == from_snapshot


def _damage(world: World, change: object) -> str:
    central = world.spec.storage.central_bucket
    newest = sorted(_snapshots(world))[-1]
    data = world.storage.read(central, newest)
    world.storage.batch(central, [Add(newest, change(data))])  # type: ignore[operator]
    return newest


def _rehash(header_change: dict[str, object], payload: bytes | None = None):  # type: ignore[no-untyped-def]
    def change(data: bytes) -> bytes:
        header_line, _, old_payload = data[len(snapshot.MAGIC) :].partition(b"\n")
        body = old_payload if payload is None else payload
        header = {**json.loads(header_line), "payload": hashlib.sha256(body).hexdigest(), **header_change}
        return snapshot.MAGIC + json.dumps(header).encode() + b"\n" + body

    return change


def _reshape(change: Callable[[dict[str, object]], dict[str, object]]):  # type: ignore[no-untyped-def]
    """A snapshot whose payload is changed (and hashed again, as one planted would be)."""

    def reshape(data: bytes) -> bytes:
        document = snapshot.unpack(data[len(snapshot.MAGIC) :].partition(b"\n")[2])
        return _rehash({}, snapshot.pack(change(document)))(data)  # type: ignore[no-any-return]

    return reshape


def _redocument(change: Callable[[dict[str, Any]], dict[str, Any]]):  # type: ignore[no-untyped-def]
    """A snapshot whose payload's JSON document is changed, its binary blobs kept as they are (hashed again)."""

    def redo(data: bytes) -> bytes:
        line, _, blobs = data[len(snapshot.MAGIC) :].partition(b"\n")[2].partition(b"\n")
        return _rehash({}, json.dumps(change(json.loads(line))).encode() + b"\n" + blobs)(data)  # type: ignore[no-any-return]

    return redo


def _counts(name: str, change: Callable[[list[int]], list[int]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: d | {name: {"keys": d[name]["keys"], "counts": change(d[name]["counts"])}}


def _others(change: Callable[[list[int], int], list[int]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The entries a snapshot says are no message, changed (given them and the number of entries)."""
    return lambda s: s | {"others": array("I", sorted(change(list(s["others"]), len(s["starts"]))))}


def _channels(change: Callable[[list[int], list[str]], list[int]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Each message's channel as a snapshot numbers it, changed (given them and the channels' names)."""
    return lambda s: s | {"message_channels": array("I", change(list(s["message_channels"]), s["channel_names"]))}


def _a_message_for(others: list[int], entries: int) -> list[int]:
    return [*others[:-1], next(at for at in range(entries) if at not in others)]


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch planted-by-a-snapshot",))


@pytest.mark.parametrize(
    ("case", "change", "reason"),
    [
        ("torn", lambda d: d[: len(d) // 2], "incomplete or damaged"),
        ("empty", lambda d: b"", "not a snapshot"),
        ("a header nested past the parser", lambda d: snapshot.MAGIC + b"[" * 100_000 + b"\n", "header is damaged"),
        ("another version", _rehash({"code": "0" * 64}), "another version"),
        ("another record", _rehash({"last": "0" * 64}), "is not the one it holds"),
        ("a header that lies about its entry", _rehash({"seq": 10**6}), "does not hold the state it claims"),
        ("a planted pickle", _rehash({}, pickle.dumps(_Boom())), "does not parse"),
        ("not a state", _rehash({}, json.dumps([1, 2]).encode()), "does not hold the state it claims"),
        ("a lookup of another shape", _redocument(lambda d: d | {"by_channel": [1, 2]}), "does not hold the state"),
        ("blobs of other sizes", _redocument(lambda d: d | {"blobs": [n + 4 for n in d["blobs"]]}), "blobs are not"),
        ("counts that do not add up", _redocument(_counts("inbox", lambda c: [n + 1 for n in c])), "do not add up"),
        ("a count of another kind", _redocument(_counts("by_author", lambda c: [-1, *c[1:]])), "of another kind"),
        ("a position past the messages", _reshape(lambda s: s | {"by_author": {"x": [10**6]}}), "past its messages"),
        (
            "positions cut short",
            _redocument(lambda d: d | {"blobs": [d["blobs"][0] - 2, d["blobs"][1] + 2, *d["blobs"][2:]]}),
            "cut short",
        ),
        ("positions not in the index", _reshape(lambda s: s | {"ids": s["ids"][1:]}), "does not describe"),
        (
            "offsets a byte off",
            _reshape(lambda s: s | {"starts": array("Q", [x + 1 for x in s["starts"]])}),
            "does not start where it says",
        ),
        ("a message named an entry of another kind", _reshape(_others(_a_message_for)), "does not describe"),
        ("an entry named twice", _reshape(_others(lambda o, _: [*o[:-1], o[0]])), "does not describe"),
        ("an entry past the last", _reshape(_others(lambda o, n: [*o[:-1], n])), "an entry past its last"),
        ("a promotion that is no 4 strings", _reshape(lambda s: s | {"promoted": [[1]]}), "does not describe"),
        ("a channel for each message but one", _reshape(_channels(lambda c, _: c[:-1])), "do not count its entries"),
        ("a channel past those named", _reshape(_channels(lambda c, n: [*c[:-1], len(n)])), "past the channels"),
        ("a channel named twice", _reshape(lambda s: s | {"channel_names": ["general"] * 2}), "not distinct names"),
        ("a channel named by a number", _reshape(lambda s: s | {"channel_names": [1]}), "not distinct names"),
        (
            "channels numbered as other channels",
            _reshape(lambda s: s | {"channel_names": s["channel_names"][::-1]}),
            "does not describe",
        ),
    ],
)
def test_a_snapshot_that_cannot_be_trusted_is_ignored_with_a_log_line(
    filled: World,
    case: str,
    change: object,
    reason: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = _full_replay(filled)
    newest = _damage(filled, change)
    filled.storage.batch(filled.spec.storage.central_bucket, [Delete(p) for p in _snapshots(filled) if p != newest])
    with caplog.at_level(logging.WARNING, "collab_backend.record"):
        record = _open(filled)
    try:
        assert record._snapshot_seq == 0 and record.state == expected
        assert any(newest in r.getMessage() and reason in r.getMessage() for r in caplog.records), caplog.text
        assert not (tmp_path / "planted-by-a-snapshot").exists()
    finally:
        record.close()


def test_a_snapshot_past_the_end_of_the_index_is_ignored(filled: World) -> None:
    central = filled.spec.storage.central_bucket
    record = _open(filled)
    record.close()  # a snapshot at the last entry
    newest = sorted(_snapshots(filled))[-1]
    last_segment = record.segments[-1]
    filled.storage.batch(central, [Delete(last_segment.path)])  # the index lost its tail (restored from a backup)
    again = _open(filled)
    try:
        assert again._snapshot_seq < snapshot.seq_of(newest)  # type: ignore[operator]
        assert again.state.seq == last_segment.first - 1
    finally:
        again.close()


def _note(i: int) -> Callable[[State, int, float], MessageEntry]:
    return lambda state, seq, ts: MessageEntry(seq, ts, f"m{seq}", "a", "u", "general", str(i))


def test_snapshots_are_written_every_n_entries_and_only_the_newest_are_kept(roomy: World) -> None:
    record = _open(roomy, snapshot_every=5)
    try:
        for i in range(23):
            record.write(_note(i))
        written = sorted(snapshot.seq_of(p) for p in _snapshots(roomy))  # type: ignore[type-var]
        assert len(written) == snapshot.KEEP and written[-1] >= 20
    finally:
        record._queue.put(None)  # stopped without the clean stop's snapshot: a crash after entry 23
        record._thread.join()  # type: ignore[union-attr]
    again = _open(roomy, snapshot_every=0)
    try:
        assert 20 <= again._snapshot_seq < 23 and [m.body for m in again.state.messages] == [str(i) for i in range(23)]
    finally:
        again.close()


def test_segments_merged_after_a_start_from_a_snapshot_keep_every_line(filled: World) -> None:
    """A merge takes its lines from the segments kept whole; offsets still hold, as the merged segment is their sum."""
    record = _open(filled)
    first = record._snapshot_seq
    try:
        for i in range(MERGE_AT * 2):
            record.write(_note(i))
        record.settle()
        merged = [s for s in record.segments if s.level > 0]
        assert merged and merged[0].first == 1 and merged[0].last > first  # lines from the stream, then written since
    finally:
        record.close()  # a snapshot at the last entry, over the merged segments
    again = _open(filled)
    try:
        assert again._snapshot_seq == again.state.seq > first
        assert again.state == _full_replay(filled)
        assert [m.body for m in again.state.messages][-3:] == [str(i) for i in range(MERGE_AT * 2 - 3, MERGE_AT * 2)]
    finally:
        again.close()


def test_lookups_that_do_not_describe_the_index_s_messages_are_dropped_and_the_index_is_read(
    filled: World, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _full_replay(filled)

    # as if written over another record with as many entries
    other_messages = _reshape(lambda s: s | {"ids": [*s["ids"][:-1], "1-00000001"]})  # type: ignore[index]
    newest = _damage(filled, other_messages)
    filled.storage.batch(filled.spec.storage.central_bucket, [Delete(p) for p in _snapshots(filled) if p != newest])
    with caplog.at_level(logging.WARNING, "collab_backend.record"):
        record = _open(filled)
    try:
        assert record._snapshot_seq == 0 and record.state == expected
        assert "does not describe the index" in caplog.text
    finally:
        record.close()


def test_a_snapshot_the_store_refuses_is_tried_again_only_after_as_many_entries(
    roomy: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _open(roomy, snapshot_every=5)
    real, tries = roomy.storage.batch, []

    def refuse_snapshots(bucket: str, ops: list[Add]) -> None:
        if any(op.path.startswith(snapshot.PREFIX) for op in ops):
            tries.append(record.state.seq)
            raise AccessDenied("no snapshots here")
        real(bucket, ops)

    monkeypatch.setattr(roomy.storage, "batch", refuse_snapshots)
    try:
        for i in range(12):
            assert record.write(_note(i))
        assert tries == [5, 10] and record.problem() is None  # the writes went on; no retry at every commit
    finally:
        record.close()


def test_a_snapshot_in_the_older_pickle_format_is_refused_unread(
    filled: World, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    newest = sorted(_snapshots(filled))[-1]
    seq = snapshot.seq_of(newest)
    older = f"{snapshot.PREFIX}{seq:012d}.pickle"  # tried first: the same entry, and a name that sorts after
    filled.storage.batch(
        filled.spec.storage.central_bucket, [Add(older, b"collab-snapshot 1\n{}\n" + pickle.dumps(_Boom()))]
    )
    with caplog.at_level(logging.WARNING, "collab_backend.record"):
        record = _open(filled)
    try:
        assert record._snapshot_seq == seq  # the JSON one beside it was used
        assert any(
            older in r.getMessage() and "not a snapshot of this format" in r.getMessage() for r in caplog.records
        )
        assert not (tmp_path / "planted-by-a-snapshot").exists()
    finally:
        record.close()
