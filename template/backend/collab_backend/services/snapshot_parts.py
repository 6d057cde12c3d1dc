"""The rankings a snapshot keeps beside the record's lookups (`record/snapshot.py`: its parts).

The first digest after a start serves the leaderboard, the credit ledger and what each direction
holds. Drawn from a million entries they cost about two seconds; given back from the snapshot, a
few hundredths. Each part's key hashes the code that draws it and the spec's scoring: a snapshot
saved by other code, or under another scoring, is not given back and the ranking is drawn afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collab_backend import spec
from collab_backend.record import snapshot
from collab_backend.record.state import State
from collab_backend.record.store import Record
from collab_backend.services import credit, direction_index, leaderboard
from collab_backend.services.credit import CreditCache
from collab_backend.services.direction_index import DirectionIndex
from collab_backend.services.leaderboard import LeaderboardCache


@dataclass
class _Ranking:
    key: str
    cache: LeaderboardCache | CreditCache
    scoring: spec.Scoring

    def save(self, state: State) -> Any:
        return self.cache.save(state, self.scoring)

    def restore(self, state: State, data: Any) -> None:
        self.cache.restore(state, self.scoring, data)


@dataclass
class _Directions:
    key: str
    index: DirectionIndex

    def save(self, state: State) -> Any:
        return self.index.save(state)

    def restore(self, state: State, data: Any) -> None:
        self.index.restore(state, data)


def register(
    record: Record, scoring: spec.Scoring, board: LeaderboardCache, ledger: CreditCache, directions: DirectionIndex
) -> None:
    """Have the record's snapshots keep the leaderboard, the credit ledger and the directions' activity."""
    settings = scoring.model_dump_json()
    ranked = (leaderboard.__file__, spec.__file__)
    record.parts["leaderboard"] = _Ranking(snapshot.fingerprint(*ranked, settings=settings), board, scoring)
    record.parts["credit"] = _Ranking(
        snapshot.fingerprint(credit.__file__, *ranked, settings=f"{settings} proxies={ledger.proxies}"), ledger, scoring
    )
    record.parts["directions"] = _Directions(snapshot.fingerprint(direction_index.__file__), directions)
