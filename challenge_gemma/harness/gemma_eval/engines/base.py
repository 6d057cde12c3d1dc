"""The one interface every engine serves: greedy generation from token ids, and teacher-forced scores.

The protocol, the perplexity and the decode checks talk to an engine only through `Engine`, so
the fake engine, the transformers stand-in and vLLM are interchangeable. Inputs are always token
ids chosen by the evaluator; outputs are token ids, never text that the engine tokenized itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SpecStats:
    """Speculative-decoding counters of one request, as far as the engine reports them.

    Attributes:
        draft_tokens: Tokens proposed by the drafter.
        accepted_tokens: Draft tokens the target model accepted.
        steps: Verification steps.
        accepted_histogram: Entry k counts the steps that accepted exactly k draft tokens.
    """

    draft_tokens: int = 0
    accepted_tokens: int = 0
    steps: int = 0
    accepted_histogram: tuple[int, ...] = ()


@dataclass(frozen=True)
class Generation:
    """What one greedy request returned.

    Attributes:
        token_ids: The generated ids, exactly as the engine returned them.
        ttft_s: Seconds to the first token as the engine measured it (diagnostic only).
        decode_s: Seconds from the first to the last token as the engine measured it (diagnostic only).
        spec: Speculative-decoding counters, when the engine drafts and reports them.
    """

    token_ids: tuple[int, ...]
    ttft_s: float | None = None
    decode_s: float | None = None
    spec: SpecStats | None = None


@dataclass(frozen=True)
class TokenScore:
    """The teacher-forced score of one position: how the model ranks the token that is there.

    Attributes:
        token_id: The token at this position.
        logprob: log p(token | everything before it), in nats.
        rank: 1 when the token is the model's most likely choice.
        top1_id: The most likely token.
        top1_logprob: Its log-probability; at least `logprob`.
    """

    token_id: int
    logprob: float
    rank: int
    top1_id: int
    top1_logprob: float

    @property
    def margin(self) -> float:
        """How far, in nats, the token is behind the top choice (0 for the top choice)."""
        return self.top1_logprob - self.logprob


@dataclass(frozen=True)
class EngineInfo:
    """What an engine says about itself, recorded in the summary.

    Attributes:
        kind: `fake`, `transformers` or `vllm`.
        family: The model family the stored baselines are keyed by (`baselines/<family>.json`).
        tokenizer: Name of the tokenizer whose ids the engine expects; data files must match it.
        vocab_size: Ids must lie below this.
        proxy: True for CPU stand-ins, whose numbers never rank.
        description: One line on what is actually running.
        versions: Library versions by name.
        device: Accelerator facts (name, driver), empty on CPU.
        engine_args: The arguments the engine was built with, safe to publish.
    """

    kind: str
    family: str
    tokenizer: str
    vocab_size: int
    proxy: bool
    description: str
    versions: dict[str, str] = field(default_factory=dict)
    device: dict[str, str] = field(default_factory=dict)
    engine_args: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """A loaded model that the evaluator drives one request at a time."""

    info: EngineInfo

    def clock(self) -> float:
        """Seconds on the clock that times requests (real for real engines, simulated for the fake)."""
        ...

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        """Greedy-decode one prompt (batch 1, temperature 0).

        Args:
            prompt_ids: The prompt, already tokenized and templated by the evaluator.
            max_new_tokens: Stop after this many new tokens.
            ignore_eos: Keep decoding through end-of-sequence tokens (the TPS protocol).
            stop_token_ids: Also stop after any of these ids, unless `ignore_eos`.

        Raises:
            EngineFailure: The engine failed while serving the request.
        """
        ...

    def score(self, token_ids: Sequence[int], start: int) -> list[TokenScore]:
        """Teacher-forced scores of positions `start` to the end, from one prefill of `token_ids`.

        Raises:
            EngineFailure: The engine failed while serving the request.
        """
        ...

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of generated ids, with the evaluator's tokenizer (for answer extraction only)."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...
