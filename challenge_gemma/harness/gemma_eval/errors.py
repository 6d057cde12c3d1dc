"""Whose fault a failure is decides what the harness does with it.

`InfrastructureError` is the evaluator's or the environment's fault (missing data, no GPU, an
unwritable state folder): the harness exits non-zero without a summary, so the verifier leaves
the result pending instead of judging the submission. `EngineFailure` is the submission's fault
(its config does not start, or the engine it configured crashes while serving): the run is
written up as invalid. `BudgetExceeded` means the run ran out of its time budget.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error the evaluator raises on purpose."""


class InfrastructureError(HarnessError):
    """The evaluator or its environment failed; no verdict about the submission is possible."""


class DataError(InfrastructureError, ValueError):
    """An evaluation data file (prompts, references, baseline, spot items) is missing or malformed."""


class EngineFailure(HarnessError):
    """The engine configured by the submission failed to start or to serve a request."""


class BudgetExceeded(HarnessError):
    """The run's time budget ran out before a required phase finished."""
