"""The server process's collector policy: survivors of a full collection are frozen, and now and then
given back so that a full collection scans everything again."""

from __future__ import annotations

import gc

from collab_backend.server import short_full_collections


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_full_collections_freeze_their_survivors_and_an_hourly_one_scans_everything() -> None:
    clock = Clock()
    undo = short_full_collections(rescan_seconds=3600, clock=clock)
    try:
        assert gc.get_freeze_count() > 0  # what was built so far is frozen at once
        kept = [[i] for i in range(1000)]  # tracked objects that survive the next collection
        before = gc.get_freeze_count()
        gc.collect()
        assert gc.get_freeze_count() >= before + len(kept)  # the survivors joined the frozen ones
        clock.now = 3600.0
        gc.collect()
        assert gc.get_freeze_count() == 0  # given back: the next full collection scans everything
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle  # garbage in a cycle: freed by a full collection that scans everything
        assert gc.collect() >= 1
        assert gc.get_freeze_count() > 0  # and frozen again
    finally:
        undo()
        gc.unfreeze()
    assert all(getattr(cb, "__name__", "") != "after" for cb in gc.callbacks)
