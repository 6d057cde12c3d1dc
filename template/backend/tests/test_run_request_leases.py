"""The lease a run request's events give at any time, against a plain model (Hypothesis).

The API tests cover who may write which event; this holds the fold (`lease_of`, `state_of`) to
a model with one holder and one expiry over any order of claims, renewals and releases at any
times, refused ones included: whatever was refused is not in the record, and the lease is what
the last accepted claim and its holder's later renewals and releases made of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import RunRequestEntry
from collab_backend.record.state import State
from collab_backend.services.run_requests import Lease, lease_of, state_of

AGENTS = ("ann", "bob", "cy")
START = 1_800_000_000.0


@dataclass
class Model:
    holder: str | None = None
    expires: float = 0.0

    def at(self, now: float) -> Lease | None:
        return Lease(self.holder, self.expires) if self.holder is not None and self.expires > now else None


ops = st.lists(
    st.tuples(
        st.sampled_from(["claim", "renew", "release"]),
        st.sampled_from(AGENTS),
        st.floats(min_value=0, max_value=3 * 3600, allow_nan=False),  # seconds since the previous event
        st.integers(min_value=1, max_value=120),  # minutes
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_the_lease_is_the_last_accepted_claim_kept_by_its_holder(steps: list[tuple[str, str, float, int]]) -> None:
    state = State()
    state.apply(RunRequestEntry(1, START, "rr-1", "open", "origin", "u", source={"bucket": "b", "path": "p"}))
    model, now, seq = Model(), START, 1
    for event, agent, gap, minutes in steps:
        now += gap
        in_force = model.at(now)
        assert lease_of(state.run_requests["rr-1"], now) == in_force
        assert state_of(state, "rr-1", now) == ("claimed" if in_force else "open")
        accepted = in_force is None if event == "claim" else in_force is not None and in_force.holder == agent
        if not accepted:  # the writer refuses it: nothing is recorded
            continue
        expires = now + minutes * 60 if event != "release" else None
        seq += 1
        state.apply(RunRequestEntry(seq, now, "rr-1", event, agent, "u", expires=expires))  # type: ignore[arg-type]
        model = Model() if event == "release" else Model(agent, now + minutes * 60)
        assert lease_of(state.run_requests["rr-1"], now) == model.at(now)
    for later in (now, now + 60, now + 120 * 60 + 1):
        assert lease_of(state.run_requests["rr-1"], later) == model.at(later)
