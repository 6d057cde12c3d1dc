"""The run's time budget, on the engine's clock (real seconds, or the fake engine's simulated ones)."""

from __future__ import annotations

from collections.abc import Callable

from gemma_eval.errors import BudgetExceeded


class Deadline:
    """A fixed end time; phases check it before each request."""

    def __init__(self, clock: Callable[[], float], budget_s: float) -> None:
        self.clock = clock
        self.end = clock() + budget_s

    def left(self) -> float:
        """Seconds left (negative once past)."""
        return self.end - self.clock()

    def check(self, phase: str) -> None:
        """Raise when the budget is spent.

        Raises:
            BudgetExceeded: No time is left for `phase`.
        """
        if self.left() <= 0:
            raise BudgetExceeded(f"the time budget ran out during {phase}")
