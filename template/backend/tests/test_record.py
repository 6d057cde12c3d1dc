"""The record under load and across restarts: nothing lost, nothing doubled."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from backend_world import SPEC_YAML, Clock, World, auth, make_spec
from fastapi.testclient import TestClient

from collab_backend import naming
from collab_backend.record.store import MERGE_AT, Record
from collab_backend.storage import StorageError


@pytest.fixture
def roomy(storage_kind: str, tmp_path, clock: Clock) -> World:  # type: ignore[no-untyped-def]
    text = SPEC_YAML.replace("raw_posts: {limit: 5,", "raw_posts: {limit: 50,").replace(
        "registrations: {limit: 3,", "registrations: {limit: 100,"
    )
    return World(storage_kind, tmp_path, make_spec(text), clock)


def test_fifty_agents_times_five_simultaneous_posts(roomy: World) -> None:
    with TestClient(roomy.app, raise_server_exceptions=False) as client:
        tokens = {f"agent-{i:02d}": roomy.user(f"user{i:02d}") for i in range(50)}
        for agent_id, token in tokens.items():
            roomy.agent(client, token, agent_id)
        barrier = threading.Barrier(50)

        def burst(agent_id: str) -> list[tuple[int, str]]:
            barrier.wait()
            out = []
            for n in range(5):
                r = client.post("/v1/messages", json={"agent_id": agent_id, "body": f"{agent_id} #{n}"},
                                headers=auth(tokens[agent_id]))  # fmt: skip
                out.append((r.status_code, r.json().get("id", "")))
            return out

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = [x for chunk in pool.map(burst, tokens) for x in chunk]
        created = [mid for status, mid in results if status == 201]
        assert len(created) == 250 and len(set(created)) == 250
        board = []
        cursor = None
        while True:
            page = client.get("/v1/messages", params={"limit": 200, **({"before": cursor} if cursor else {})}).json()
            board += [m["id"] for m in page["items"]]
            if not page["next"]:
                break
            cursor = page["next"]
        assert sorted(board) == sorted(created)
        assert roomy.record.commits < 250  # writes were grouped
    files = roomy.storage.list(roomy.spec.storage.central_bucket, "message_board/", limit=1000).items
    assert len(files) == 250


def _restart(world: World) -> Record:
    record = Record(world.storage, world.spec.storage.central_bucket, clock=world.record.clock)
    record.open()
    return record


def test_restart_rebuilds_the_same_record_from_the_index(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        ids = [
            client.post("/v1/messages", json={"agent_id": "speedy", "body": f"m{i}"}, headers=auth(token)).json()["id"]
            for i in range(7)
        ]
    again = _restart(roomy)
    try:
        assert [m.id for m in again.state.messages] == ids
        assert set(again.state.agents) == {"speedy"}
        assert set(again.state.channels) == {"general", "results", "rulings"}
    finally:
        again.close()


def test_a_crash_between_index_and_files_loses_nothing_and_doubles_nothing(roomy: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        real_batch = roomy.storage.batch

        def index_only(bucket, ops):  # type: ignore[no-untyped-def]  # the process "dies" after the index write
            if any(op.path.startswith("message_board/") for op in ops):
                raise StorageError("killed")
            return real_batch(bucket, ops)

        monkeypatch.setattr(roomy.storage, "batch", index_only)
        posted = client.post("/v1/messages", json={"agent_id": "speedy", "body": "survives"}, headers=auth(token))
        assert posted.status_code == 201
    monkeypatch.setattr(roomy.storage, "batch", real_batch)  # the stop's last round of files failed too
    central = roomy.spec.storage.central_bucket
    path = naming.message_path(posted.json()["id"], "speedy")
    assert roomy.storage.stat(central, [path]) == {}
    again = _restart(roomy)
    try:
        assert [m.body for m in again.state.messages] == ["survives"]
        assert roomy.storage.read(central, path).decode().endswith("survives")
    finally:
        again.close()
    third = _restart(roomy)  # a second restart finds everything in place
    try:
        assert [m.body for m in third.state.messages] == ["survives"]
    finally:
        third.close()


def test_an_index_write_that_fails_answers_no_201_and_leaves_no_trace(roomy: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with TestClient(roomy.app, raise_server_exceptions=False) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        monkeypatch.setattr(roomy.record, "sleep", lambda _: None)

        def down(bucket, ops):  # type: ignore[no-untyped-def]
            from collab_backend.storage import Unavailable

            raise Unavailable("down")

        real = roomy.storage.batch
        monkeypatch.setattr(roomy.storage, "batch", down)
        failed = client.post("/v1/messages", json={"agent_id": "speedy", "body": "lost?"}, headers=auth(token))
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
        monkeypatch.setattr(roomy.storage, "batch", real)
        assert client.get("/v1/messages").json()["items"] == []
        ok = client.post("/v1/messages", json={"agent_id": "speedy", "body": "back"}, headers=auth(token))
        assert ok.status_code == 201


def test_segments_merge_and_a_restart_reads_few_files(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        for i in range(MERGE_AT + 5):
            roomy.record.clock.now += 61 if i % 40 == 39 else 0  # type: ignore[attr-defined]
            assert (
                client.post(
                    "/v1/messages", json={"agent_id": "speedy", "body": f"{i}"}, headers=auth(token)
                ).status_code
                == 201
            )
    segments = roomy.storage.list(roomy.spec.storage.central_bucket, naming.INDEX_PREFIX).items
    assert len(segments) < MERGE_AT
    again = _restart(roomy)
    try:
        assert len(again.state.messages) == MERGE_AT + 5
    finally:
        again.close()


def test_promotion_dedup_survives_a_restart(roomy: World) -> None:
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        roomy.write(token, roomy.bucket_of("speedy"), {"p.md": b"hello"})
        first = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "p.md"}, headers=auth(token))
        assert first.status_code == 201
    roomy2 = World.__new__(World)
    roomy2.__dict__.update(roomy.__dict__)
    from collab_backend.context import Context
    from collab_backend.limits import Limits
    from collab_backend.main import create_app

    record = Record(roomy.storage, roomy.spec.storage.central_bucket, clock=roomy.record.clock)
    ctx = Context(roomy.spec, roomy.storage, record, roomy.ctx.identity, Limits.from_spec(roomy.spec))
    with TestClient(create_app(ctx)) as client:
        again = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "p.md"}, headers=auth(token))
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        assert len(client.get("/v1/messages").json()["items"]) == 1


def test_index_lines_decode_to_the_same_entries_fast_path_or_not() -> None:
    import json

    from collab_backend.record.entries import MessageEntry, decode, encode

    entry = MessageEntry(3, 1.5, "1500-00000003", "speedy", "alice", "general", "hi", mentions=("bob",),
                         notify=("bob",), source={"bucket": "b", "path": "p", "hash": "h"})  # fmt: skip
    assert decode(encode(entry)) == entry
    older = json.loads(encode(entry))
    del older["notify"], older["client_fields"]  # a line written before these fields existed
    decoded = decode(json.dumps(older))
    assert decoded.notify == () and decoded.client_fields == {} and decoded.body == "hi"


def test_unicode_line_separators_in_a_body_survive_a_restart(roomy: World) -> None:
    # The index keeps non-ASCII text raw: U+2028, U+2029 and NEL sit unescaped in a line, and
    # only "\n" may separate entries.
    bodies = ["a\u2028b", "c\u2029d", "e\x85f", "g\r\nh", "i\x0bj\x0ck\x1cl"]
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        for body in bodies:
            posted = client.post("/v1/messages", json={"agent_id": "speedy", "body": body}, headers=auth(token))
            assert posted.status_code == 201, posted.text
    again = _restart(roomy)
    try:
        assert [m.body for m in again.state.messages] == bodies
    finally:
        again.close()


def test_a_segment_orjson_refuses_is_read_by_the_standard_library() -> None:
    import json
    import math

    from collab_backend.record.store import parse_segment

    lines = [json.dumps({"seq": 1, "cost": float("nan")}), json.dumps({"seq": 2, "text": "x\u2028y"})]
    parsed = parse_segment(("\n".join(lines) + "\n").encode())
    assert parsed[0]["seq"] == 1 and math.isnan(parsed[0]["cost"])
    assert parsed[1] == {"seq": 2, "text": "x\u2028y"}


def test_loading_leaves_the_garbage_collector_as_it_found_it(roomy: World) -> None:
    import gc

    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
    assert gc.isenabled()
    again = _restart(roomy)
    again.close()
    assert gc.isenabled()
    gc.disable()
    try:
        again = _restart(roomy)
        again.close()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_merge_interrupted_before_its_parts_were_deleted_loads_each_entry_once(roomy: World) -> None:
    from collab_backend.record.entries import encode
    from collab_backend.record.store import Segment
    from collab_backend.storage import Add

    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        for i in range(MERGE_AT + 5):
            roomy.record.clock.now += 61 if i % 40 == 39 else 0  # type: ignore[attr-defined]
            client.post("/v1/messages", json={"agent_id": "speedy", "body": f"{i}"}, headers=auth(token))
        merged = next(s for s in roomy.record.segments if s.level == 1)
        log = list(roomy.record.state.log)
    assert len(log) > merged.last + 3
    # Segments left behind: parts inside the merged one's range, and one that straddles its end.
    central = roomy.spec.storage.central_bucket
    for first, last in ((merged.first, merged.first + 2), (merged.first + 3, merged.first + 9),
                        (merged.last - 2, merged.last + 3)):  # fmt: skip
        body = "".join(encode(e) + "\n" for e in log[first - 1 : last])
        roomy.storage.batch(central, [Add(Segment(first, last, 0).path, body.encode())])
    again = _restart(roomy)
    try:
        assert [e.seq for e in again.state.log] == list(range(1, len(log) + 1))
        ids = [m.id for m in again.state.messages]
        assert len(ids) == len(set(ids)) == MERGE_AT + 5
    finally:
        again.close()


def test_a_file_a_later_entry_rewrote_is_not_left_stale_by_a_crash(roomy: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    central, real_batch = roomy.spec.storage.central_bucket, roomy.storage.batch
    path = naming.profile_path("speedy")
    with TestClient(roomy.app) as client:
        token = roomy.user("alice")
        roomy.agent(client, token, "speedy")
        assert client.put("/v1/agents/speedy/profile", json={"bio": "first"}, headers=auth(token)).status_code == 200
        roomy.record.settle()
        assert roomy.storage.read(central, path).decode().endswith("first")

        def profiles_down(bucket, ops):  # type: ignore[no-untyped-def]  # the process "dies" before the new file
            if any(op.path == path for op in ops):
                raise StorageError("killed")
            return real_batch(bucket, ops)

        monkeypatch.setattr(roomy.storage, "batch", profiles_down)
        assert client.put("/v1/agents/speedy/profile", json={"bio": "second"}, headers=auth(token)).status_code == 200
    monkeypatch.setattr(roomy.storage, "batch", real_batch)
    assert roomy.storage.read(central, path).decode().endswith("first")  # the old file is there: present, stale
    again = _restart(roomy)
    try:
        assert roomy.storage.read(central, path).decode().endswith("second")
    finally:
        again.close()


@pytest.mark.parametrize("storage_kind", ["local"])
def test_a_path_the_store_refuses_for_good_holds_back_no_other_file(roomy: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    central = roomy.spec.storage.central_bucket
    with TestClient(roomy.app) as client:
        tokens = {agent: roomy.user(f"user-{agent}") for agent in ("speedy", "helper")}
        for agent, token in tokens.items():
            roomy.agent(client, token, agent)
        outside = tmp_path / "outside"
        outside.mkdir()
        inbox = roomy.storage.bucket_dir(central) / naming.inbox_path("helper", "x").rsplit("/", 1)[0]
        inbox.parent.mkdir(parents=True, exist_ok=True)
        inbox.symlink_to(outside, target_is_directory=True)  # planted where helper's inbox copies go
        mention = client.post("/v1/messages", json={"agent_id": "speedy", "body": "ask @helper"},
                              headers=auth(tokens["speedy"])).json()  # fmt: skip
        plain = client.post("/v1/messages", json={"agent_id": "speedy", "body": "plain"},
                            headers=auth(tokens["speedy"])).json()  # fmt: skip
        roomy.record.settle()
        for message in (mention, plain):  # the board's own copies are written, the refused inbox copy is not
            assert roomy.storage.read(central, naming.message_path(message["id"], "speedy"))
        assert list(outside.iterdir()) == []
        assert roomy.record.files_waiting == 0 and roomy.record.files_confirmed == roomy.record.state.seq
        assert client.get("/v1/healthz").status_code == 200
