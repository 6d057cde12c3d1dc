"""The read views people browse (the dashboard's): stats, changes, series, lineage, threads, search, profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from backend_world import SPEC_YAML, Clock, World, auth, documented_statuses, make_spec
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import MessageEntry, ResultEntry, VerdictEntry
from collab_backend.record.state import State
from collab_backend.services import result_views
from collab_backend.services.result_views import _frontier
from collab_backend.services.threads import HandleIndex, ThreadIndex, _Threads, search
from collab_testing.hub import ADMIN_TOKEN

SPEC = (
    SPEC_YAML.replace("raw_posts: {limit: 5,", "raw_posts: {limit: 500,")
    .replace("promotions: {limit: 5,", "promotions: {limit: 500,")
    .replace(
        "scoring: {score_field: tps}",
        "scoring:\n  score_field: tps\n  metrics: [{field: ppl, direction: minimize, guardrail: {max: 2.42}}]\n"
        "  tracks: [{name: lossless}, {name: lossy}]\n"
        "  noise: {kind: relative, sigma: 0.004, z: 2.5, min_margin: 0.01}",
    )
)
RESULT = (
    "---\ntps: {tps}\nppl: {ppl}\ntrack: {track}\nstatus: {status}\nfingerprint: sha256:{name}\n"
    "parents: {parents}\n---\n\n{name}\n"
)


@pytest.fixture
def world(storage_kind: str, tmp_path: Path, clock: Clock) -> World:
    return World(storage_kind, tmp_path, make_spec(SPEC), clock)


@pytest.fixture
def setup(world: World) -> Iterator[tuple[TestClient, str]]:
    with TestClient(world.app) as client:
        client.event_hooks["response"].append(documented_statuses(world.app))  # every answer is in the OpenAPI
        token = world.user("alice")
        world.agent(client, token, "speedy")
        yield client, token


def submit(world: World, client: TestClient, token: str, name: str, tps: float, ppl: float = 2.3, *,
           track: str = "lossless", status: str = "agent-run", parents: tuple[str, ...] = ()) -> str:  # fmt: skip
    text = RESULT.format(tps=tps, ppl=ppl, track=track, status=status, name=name, parents=list(parents))
    world.write(token, world.bucket_of("speedy"), {f"results/{name}.md": text.encode()})
    response = client.post(
        "/v1/results", json={"agent_id": "speedy", "path": f"results/{name}.md"}, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def post(client: TestClient, token: str, body: str, **fields: object) -> str:
    response = client.post("/v1/messages", json={"agent_id": "speedy", "body": body, **fields}, headers=auth(token))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_series_marks_records_by_the_leaderboards_rules(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    a = submit(world, client, token, "a", 100)
    b = submit(world, client, token, "b", 120, parents=(a,))
    c = submit(world, client, token, "c", 150, ppl=2.9)  # outside the guardrail: never a record
    d = submit(world, client, token, "d", 110)
    neg = submit(world, client, token, "neg", 500, status="negative")
    lossy = submit(world, client, token, "l", 300, track="lossy")
    body = client.get("/v1/series", params={"track": "lossless"}).json()
    [series] = body["series"]
    assert [p["id"] for p in series["points"]] == [a, b, c, d, neg]
    assert [p["id"] for p in series["records"]] == [a, b]
    assert {p["id"]: p["excluded"] for p in series["points"]}[c] == "ppl outside its guardrail"
    assert {p["id"]: p["excluded"] for p in series["points"]}[neg] == "negative result"
    assert body["score"]["field"] == "tps"
    both = client.get("/v1/series").json()["series"]
    assert [s["track"] for s in both] == ["lossless", "lossy"] and both[1]["records"][0]["id"] == lossy
    assert [
        p["id"]
        for p in client.get("/v1/series", params={"track": "lossless", "limit": 2}).json()["series"][0]["points"]
    ] == [d, neg]
    assert client.get("/v1/series", params={"track": "nope"}).json()["error"]["code"] == "NOT_FOUND"


def test_lineage_strikes_invalid_results_and_their_descendants(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    root = submit(world, client, token, "root", 100)
    bad = submit(world, client, token, "bad", 200, parents=(root,))
    child = submit(world, client, token, "child", 210, parents=(bad,))
    grandchild = submit(world, client, token, "gc", 220, parents=(child,))
    verdict = {"verdict": "invalid", "reason": "cached outputs", "expected": "pending"}
    assert client.put(f"/v1/results/{bad}/verdict", json=verdict, headers=auth(ADMIN_TOKEN)).status_code == 200
    nodes = {n["id"]: n for n in client.get("/v1/lineage").json()["items"]}
    assert nodes[bad]["excluded"] == "invalid" and nodes[bad]["verdict_reason"] == "cached outputs"
    assert nodes[child]["excluded"] == "descends from an invalid result" and nodes[child]["invalid_ancestor"] == bad
    assert nodes[grandchild]["invalid_ancestor"] == bad
    assert nodes[root]["excluded"] is None and nodes[root]["children"] == 1 and nodes[root]["record"]
    assert nodes[grandchild]["parents"] == [child] and nodes[grandchild]["fingerprint"] is None
    assert nodes[root]["source_path"] == "results/root.md"
    # the leaderboard agrees: only the root ranks
    standings = client.get("/v1/leaderboard", params={"track": "lossless"}).json()["boards"][0]["standings"]
    assert [s["result_id"] for s in standings] == [root]
    assert standings[0]["margin"] == pytest.approx(max(0.01, 2.5 * 0.004 * 2**0.5) * 100)


def test_lineage_pages_and_filters(world: World, setup: tuple[TestClient, str], clock: Clock) -> None:
    client, token = setup
    ids = []
    for i in range(7):
        clock.now += 60
        ids.append(submit(world, client, token, f"r{i}", 100 + i, track="lossless" if i % 2 else "lossy"))
    first = client.get("/v1/lineage", params={"limit": 3}).json()
    assert [n["id"] for n in first["items"]] == ids[:-4:-1] and first["next"] == ids[4]
    second = client.get("/v1/lineage", params={"limit": 3, "before": first["next"]}).json()
    assert [n["id"] for n in second["items"]] == [ids[3], ids[2], ids[1]]
    last = client.get("/v1/lineage", params={"limit": 3, "before": second["next"]}).json()
    assert [n["id"] for n in last["items"]] == [ids[0]] and last["next"] is None
    lossy = client.get("/v1/lineage", params={"track": "lossy"}).json()
    assert [n["id"] for n in lossy["items"]] == [ids[6], ids[4], ids[2], ids[0]]
    assert client.get("/v1/lineage", params={"agent": "nobody"}).json()["items"] == []
    assert len(client.get("/v1/lineage", params={"agent": "speedy"}).json()["items"]) == 7
    from collab_backend.record.entries import iso

    middle = iso(world.record.state.results[ids[3]].ts)
    later = client.get("/v1/lineage", params={"since": middle}).json()
    assert [n["id"] for n in later["items"]] == ids[:2:-1]
    earlier = client.get("/v1/lineage", params={"until": middle}).json()
    assert [n["id"] for n in earlier["items"]] == ids[2::-1]
    assert client.get("/v1/lineage", params={"since": "yesterday"}).json()["error"]["code"] == "VALIDATION_FAILED"
    assert client.get("/v1/lineage", params={"track": "nope"}).json()["error"]["code"] == "NOT_FOUND"


def test_pareto_frontier_trades_score_against_the_guarded_metric(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    fast = submit(world, client, token, "fast", 300, ppl=2.40)
    accurate = submit(world, client, token, "accurate", 200, ppl=2.20)
    dominated = submit(world, client, token, "dominated", 190, ppl=2.30)
    middle = submit(world, client, token, "middle", 250, ppl=2.30)
    lineage = client.get("/v1/lineage", params={"track": "lossless"}).json()
    assert lineage["frontier"] == [{"track": "lossless", "ids": [fast, middle, accurate]}]
    pareto = {n["id"]: n["pareto"] for n in lineage["items"]}
    assert pareto == {fast: True, middle: True, accurate: True, dominated: False}
    assert lineage["guarded_metric"]["field"] == "ppl"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_frontier_is_exactly_the_non_dominated_points(points: list[tuple[int, int]]) -> None:
    from collab_backend.record.entries import ResultEntry
    from collab_backend.spec import Bounds, Metric

    guard = Metric(field="ppl", label="ppl", unit="", direction="minimize", guardrail=Bounds(max=100))
    results = [
        ResultEntry(
            i + 1,
            0.0,
            f"r{i}",
            "a",
            "u",
            float(s),
            "agent-run",
            {"ppl": float(p)},
            None,
            (),
            "f",
            "",
            {"bucket": "b", "path": "p", "hash": "h"},
        )
        for i, (s, p) in enumerate(points)
    ]
    frontier = set(_frontier(results, 1.0, guard))

    def dominated(r: ResultEntry) -> bool:
        return any(
            o.score >= r.score and o.metrics["ppl"] <= r.metrics["ppl"]
            and (o.score > r.score or o.metrics["ppl"] < r.metrics["ppl"] or o.seq < r.seq)
            for o in results if o is not r
        )  # fmt: skip

    assert frontier == {r.id for r in results if not dominated(r)}


def test_threads_fold_replies_and_count_them(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    first = post(client, token, "first thread")
    post(client, token, "in results", channel="results")
    second = post(client, token, "second thread")
    reply = post(client, token, "a reply", thread=first)
    post(client, token, "a reply to the reply", thread=reply)
    page = client.get("/v1/threads", params={"channel": "general"}).json()
    assert [(t["id"], t["replies"]) for t in page["items"]] == [(second, 0), (first, 2)]
    assert page["items"][1]["last_reply"]["body"] == "a reply to the reply"
    assert len(client.get("/v1/threads").json()["items"]) == 3
    paged = client.get("/v1/threads", params={"channel": "general", "limit": 1}).json()
    assert paged["next"] == second
    assert client.get("/v1/threads", params={"channel": "nope"}).json()["error"]["code"] == "CHANNEL_UNKNOWN"


def test_the_thread_index_built_from_the_lookups_equals_one_folded_message_by_message(
    world: World, setup: tuple[TestClient, str]
) -> None:
    client, token = setup
    roots = [post(client, token, f"root {i}", channel=("general", "results")[i % 2]) for i in range(4)]
    for i in range(9):
        post(client, token, f"reply {i}", thread=roots[i % 3])
    state = world.record.state
    for n in (0, 3, 8, len(state.messages)):
        folded = ThreadIndex._catch_up(_Threads(state_id=id(state)), state, n)
        assert ThreadIndex._build(state, n) == folded


def test_thread_index_starts_over_when_a_message_is_taken_back(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    post(client, token, "kept")
    state = world.record.state
    ctx = world.ctx
    ctx.threads.get(state)
    taken = state.messages.pop()  # what an undo does to a message whose index write failed
    state.position.pop(taken.id)
    for positions in (state.by_channel[taken.channel], state.by_author[taken.author]):
        positions.pop()
    post(client, token, "another")
    [root] = client.get("/v1/threads").json()["items"]
    assert root["body"] == "another"


def test_search_pages_within_a_budget(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    ids = [post(client, token, f"{'Needle' if i % 2 else 'hay'} {i}") for i in range(10)]
    found = client.get("/v1/search", params={"q": "needle", "limit": 2}).json()
    assert [m["id"] for m in found["items"]] == [ids[9], ids[7]] and found["next"] == ids[7]
    rest = client.get("/v1/search", params={"q": "needle", "before": found["next"]}).json()
    assert [m["id"] for m in rest["items"]] == [ids[5], ids[3], ids[1]] and rest["next"] is None
    state = world.record.state
    budgeted = search(state, range(len(state.messages)), "needle", 50, None, budget=3)
    assert [m["id"] for m in budgeted["items"]] == [ids[9], ids[7]] and budgeted["next"] == ids[7]
    assert budgeted["scanned"] == 3
    assert client.get("/v1/search", params={"q": "x"}).json()["error"]["code"] == "VALIDATION_FAILED"
    assert client.get("/v1/search", params={"q": ".*"}).json()["items"] == []  # text, never a pattern


def test_changes_since_counts_kinds_and_channels(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    seq = client.get("/v1/stats").json()["seq"]
    post(client, token, "one")
    post(client, token, "two", channel="results")
    submit(world, client, token, "r", 100)
    changes = client.get("/v1/changes", params={"since": seq}).json()
    assert changes["kinds"] == {"message": 2, "result": 1} and changes["channels"] == {"general": 1, "results": 1}
    assert changes["seq"] == seq + 3 and not changes["truncated"]
    assert client.get("/v1/changes", params={"since": changes["seq"]}).json()["kinds"] == {}
    stats = client.get("/v1/stats").json()
    assert stats["messages"] == 2 and stats["agents"] == 1 and stats["results"]["results"] == 1
    assert stats["jobs"] == {"queued": 0, "running": 0, "ended": 0}


def test_handles_complete_a_prefix(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    world.agent(client, token, "speedy-two")
    world.agent(client, token, "slow")
    member = world.add_user("carol", "hf_carol_token", {"acme": "contributor"})
    assert client.post("/v1/messages", json={"body": "hi"}, headers=auth(member)).status_code == 201
    assert client.get("/v1/handles", params={"prefix": "sp"}).json()["items"] == ["speedy", "speedy-two"]
    assert client.get("/v1/handles", params={"prefix": "Human"}).json()["items"] == ["human-carol"]
    assert client.get("/v1/handles", params={"limit": 2}).json()["items"] == ["human-carol", "slow"]


def test_the_handles_forget_a_person_whose_only_post_was_taken_back() -> None:
    state, index = State(), HandleIndex()
    undo = state.apply(MessageEntry(1, 1.0, "m1", "human-x", "x", "general", "hi", role="human"))
    assert index.get(state) == ["human-x"]
    undo()  # a failed index write: the person never posted
    state.apply(MessageEntry(1, 1.0, "m1", "human-y", "y", "general", "hi", role="human"))
    assert index.get(state) == ["human-y"]


def test_profiles_are_the_owners_to_write_and_anyones_to_read(world: World, setup: tuple[TestClient, str]) -> None:
    client, token = setup
    profile = {"model": "gemma-4", "harness": "opencode", "tools": ["bash", "hf"], "bio": "I *profile* kernels."}
    saved = client.put("/v1/agents/speedy/profile", json=profile, headers=auth(token))
    assert saved.status_code == 200 and saved.json()["tools"] == ["bash", "hf"]
    card = client.get("/v1/agents/speedy/profile").json()
    assert card["model"] == "gemma-4" and card["bio"] == "I *profile* kernels." and card["user"] == "alice"
    mallory = world.user("mallory")
    refused = client.put("/v1/agents/speedy/profile", json=profile, headers=auth(mallory))
    assert refused.json()["error"]["code"] == "AGENT_NOT_REGISTERED"
    too_long = client.put("/v1/agents/speedy/profile", json={"bio": "x" * 2001}, headers=auth(token))
    assert too_long.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert client.get("/v1/agents/nobody/profile").json()["error"]["code"] == "NOT_FOUND"
    world.record.settle()  # the files of the writes before are written
    files = world.storage.read(world.spec.storage.central_bucket, "agents/speedy.profile.md").decode()
    assert "model: gemma-4" in files and files.endswith("I *profile* kernels.")
    # a restart keeps it
    with TestClient(world.restarted().app) as again:
        assert again.get("/v1/agents/speedy/profile").json()["harness"] == "opencode"


SCORINGS = {"guarded": make_spec(SPEC).scoring, "score only": make_spec(SPEC_YAML).scoring}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[ResultEntry], dict[str, VerdictEntry], int]:
    """Results (parents among earlier ones, tied scores, metrics in and out of the guardrail), verdicts, a split."""
    results: list[ResultEntry] = []
    for seq in range(draw(st.integers(1, 30))):
        parents = draw(st.lists(st.sampled_from([r.id for r in results]), max_size=2, unique=True)) if results else []
        ppl = draw(st.sampled_from([None, 2.1, 2.2, 2.3, 2.5]))
        results.append(
            ResultEntry(
                seq, float(seq), f"r{seq:03d}", draw(st.sampled_from(["a", "b"])), "u",
                float(draw(st.integers(1, 6))), draw(st.sampled_from(["agent-run", "agent-run", "negative"])),
                {} if ppl is None else {"ppl": ppl}, draw(st.sampled_from(["lossless", "lossy"])), tuple(parents),
                "sha256:x", "", {},
            )
        )  # fmt: skip
    split = draw(st.integers(0, len(results)))
    ruled = draw(st.lists(st.sampled_from([r.id for r in results[:split]]), unique=True)) if split else []
    verdicts = {
        rid: VerdictEntry(100 + i, 0.0, rid, draw(st.sampled_from(["valid", "invalid", "pending"])), "human:o")
        for i, rid in enumerate(ruled)
    }
    return results, verdicts, split


@settings(max_examples=200, deadline=None)
@given(histories(), st.sampled_from(sorted(SCORINGS)), st.sampled_from([2, 3, 500]), st.booleans())
def test_extending_the_lookups_with_new_results_equals_building_them(
    history: tuple[list[ResultEntry], dict[str, VerdictEntry], int], scoring: str, cap: int, one_by_one: bool
) -> None:
    """New results extend the read views' lookups; what they hold is what a rebuild from scratch gives."""
    entries, verdicts, split = history
    results = {r.id: r for r in entries}
    order = [r.id for r in entries]
    with mock.patch.object(result_views, "MAX_FRONTIER", cap):
        built = result_views.build(order[:split], results, verdicts, SCORINGS[scoring])
        for end in range(split + 1, len(order) + 1) if one_by_one else [len(order)]:
            extended = result_views.extend(built, order[:end], results, verdicts, SCORINGS[scoring])
            assert extended is not None
            assert extended == result_views.build(order[:end], results, verdicts, SCORINGS[scoring])
            built = extended
        if split:  # a changed verdict, or a result taken back, is not an extension
            changed = {**verdicts, order[0]: VerdictEntry(999, 0.0, order[0], "invalid", "human:o", "why")}
            assert result_views.extend(built, order, results, changed, SCORINGS[scoring]) is None
            assert result_views.extend(built, order[:-1], results, verdicts, SCORINGS[scoring]) is None


def test_a_new_result_that_empties_a_full_frontier_brings_the_hidden_ones_up() -> None:
    """With the frontier cut at its limit, a new result that dominates shown points lets hidden ones in."""

    def entry(seq: int, tps: float, ppl: float) -> ResultEntry:
        return ResultEntry(seq, 0.0, f"r{seq}", "a", "u", tps, "agent-run", {"ppl": ppl}, "lossless", (), "", "", {})

    entries = [entry(0, 6, 2.3), entry(1, 5, 2.2), entry(2, 4, 2.1), entry(3, 6, 2.2)]
    results = {r.id: r for r in entries}
    scoring = SCORINGS["guarded"]
    with mock.patch.object(result_views, "MAX_FRONTIER", 2):
        built = result_views.build(["r0", "r1", "r2"], results, {}, scoring)
        assert built.frontier["lossless"] == ["r0", "r1"]  # r2 is on it too, past the limit
        extended = result_views.extend(built, ["r0", "r1", "r2", "r3"], results, {}, scoring)
    assert extended is not None and extended.frontier["lossless"] == ["r3", "r2"]


def test_a_new_result_below_two_invalid_ones_names_the_earlier() -> None:
    def entry(seq: int, parents: tuple[str, ...]) -> ResultEntry:
        return ResultEntry(
            seq, 0.0, f"r{seq}", "a", "u", 5.0, "agent-run", {"ppl": 2.2}, "lossless", parents, "", "", {}
        )

    results = {r.id: r for r in (entry(0, ()), entry(1, ()), entry(2, ("r1", "r0")))}
    verdicts = {rid: VerdictEntry(9, 0.0, rid, "invalid", "human:o", "no") for rid in ("r0", "r1")}
    built = result_views.build(["r0", "r1"], results, verdicts, SCORINGS["guarded"])
    extended = result_views.extend(built, ["r0", "r1", "r2"], results, verdicts, SCORINGS["guarded"])
    assert extended is not None and extended.invalid_root == {"r2": "r0"}
    assert extended.excluded["r2"] == "descends from an invalid result"
