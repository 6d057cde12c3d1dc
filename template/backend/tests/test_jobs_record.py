"""Job entries in the record: they round-trip through the index, undo cleanly, and survive a restart."""

from __future__ import annotations

import json

from backend_world import World

from collab_backend.jobs.paths import job_id
from collab_backend.record.entries import JobEntry, decode, encode
from collab_backend.record.state import State
from collab_backend.record.store import Record


def _launch(seq: int, agent: str = "speedy", user: str = "alice") -> JobEntry:
    return JobEntry(seq, float(seq), job_id(float(seq), seq), "launch", agent, user, "queued",
                    source={"bucket": "acme/fast-speedy", "path": "sub"}, track="lossless")  # fmt: skip


def test_job_entries_round_trip_through_the_index() -> None:
    launch = _launch(1)
    end = JobEntry(2, 2.0, launch.job_id, "end", "speedy", "alice", "succeeded", exit_code=0,
                   summary={"valid": True, "reasons": [], "proxy": True, "provenance": {"evaluator": "x"}})  # fmt: skip
    for entry in (launch, end):
        assert decode(encode(entry)) == entry
    older = json.loads(encode(launch))
    del older["summary"], older["external_id"]  # a line written before these fields existed
    assert decode(json.dumps(older)) == launch


def test_job_events_attach_to_their_launch_and_undo_in_order() -> None:
    state = State()
    launch = _launch(1)
    state.apply(launch)
    start = JobEntry(2, 2.0, launch.job_id, "start", "speedy", "alice", "running", external_id="hub-1")
    undo = state.apply(start)
    assert state.jobs[launch.job_id] == [launch, start]
    assert state.jobs_by_agent["speedy"] == state.jobs_by_user["alice"] == state.job_order == [launch.job_id]
    undo()
    assert state.jobs[launch.job_id] == [launch]
    state.seq = 1
    stray = JobEntry(2, 2.0, "job-0000000000009-9", "end", "speedy", "alice", "error", charged=False)
    state.apply(stray)  # an event of no launched job is kept in the log and attached to nothing
    assert set(state.jobs) == {launch.job_id}


def test_job_files_and_a_restart(world: World) -> None:
    world.record.open()
    try:
        launch = world.record.write(lambda state, seq, ts: JobEntry(
            seq, ts, job_id(ts, seq), "launch", "speedy", "alice", "queued",
            source={"bucket": "acme/fast-speedy", "path": "sub"}))  # fmt: skip
        world.record.write(lambda state, seq, ts: JobEntry(
            seq, ts, launch.job_id, "end", "speedy", "alice", "error", charged=False, reason="no machine"))  # fmt: skip
    finally:
        world.record.close()
    central = world.spec.storage.central_bucket
    outcome = json.loads(world.storage.read(central, f"jobs/{launch.job_id}/outcome.json"))
    assert outcome["status"] == "error" and outcome["charged"] is False
    assert json.loads(world.storage.read(central, f"jobs/{launch.job_id}/job.json"))["agent"] == "speedy"
    again = Record(world.storage, central, clock=world.record.clock)
    again.open()
    try:
        assert [e.event for e in again.state.jobs[launch.job_id]] == ["launch", "end"]
    finally:
        again.close()
