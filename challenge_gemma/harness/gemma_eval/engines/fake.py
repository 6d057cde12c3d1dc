"""A deterministic fake engine: a sparse next-token model over the toy vocabulary and a simulated clock.

The next-token distribution depends only on the last few tokens: a handful of candidate tokens
get pseudo-random logits seeded by that context, every other token shares one low logit. Greedy
generation and teacher-forced scoring read the same distribution, so an honest fake passes the
decode checks exactly; tests subclass `_pick_next` to sabotage the decode path alone. Time is
simulated (prefill and decode cost per token, a per-prompt jitter), so the protocol and its pass
planning are tested with exact, repeatable numbers and no sleeping.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from gemma_eval import toy_tokenizer
from gemma_eval.engines.base import EngineInfo, Generation, TokenScore

FAMILY = "fake-v1"


@dataclass(frozen=True)
class Distribution:
    """The next-token distribution after one context: candidates sorted best first, log-probabilities in nats."""

    candidates: tuple[tuple[int, float], ...]
    other_logprob: float

    def logprob(self, token_id: int) -> float:
        for candidate, lp in self.candidates:
            if candidate == token_id:
                return lp
        return self.other_logprob

    def rank(self, token_id: int) -> int:
        lp = self.logprob(token_id)
        return 1 + sum(1 for _, other in self.candidates if other > lp)


class FakeEngine:
    """The fake engine; every argument shapes its simulated model or clock."""

    def __init__(
        self,
        *,
        seed: int = 0,
        vocab_size: int = toy_tokenizer.VOCAB_SIZE,
        context: int = 3,
        candidates: int = 8,
        spread: float = 1.5,
        floor: float = -4.0,
        prefill_s_per_token: float = 2e-5,
        decode_s_per_token: float = 4e-3,
        jitter: float = 0.02,
        engine_args: dict[str, object] | None = None,
    ) -> None:
        self._seed = seed
        self._vocab = vocab_size
        self._context = context
        self._k = candidates
        self._spread = spread
        self._floor = floor
        self._prefill = prefill_s_per_token
        self._decode = decode_s_per_token
        self._jitter = jitter
        self._now = 0.0
        self._requests = 0
        self.info = EngineInfo(
            kind="fake",
            family=FAMILY,
            tokenizer=toy_tokenizer.NAME,
            vocab_size=vocab_size,
            proxy=True,
            description="fake engine: a seeded sparse next-token model with a simulated clock; the model is not loaded",
            engine_args=dict(engine_args or {}),
        )
        self._distribution = lru_cache(maxsize=65536)(self._make_distribution)

    def clock(self) -> float:
        """Simulated seconds; only requests advance it."""
        return self._now

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        """Greedy-decode through `_pick_next`, advancing the simulated clock."""
        ids = list(prompt_ids)
        stops = set() if ignore_eos else {toy_tokenizer.EOS, *stop_token_ids}
        out: list[int] = []
        while len(out) < max_new_tokens:
            token = self._pick_next(self._distribution(tuple(ids[-self._context :])))
            out.append(token)
            ids.append(token)
            if token in stops:
                break
        # Jitter differs per request, so repeated passes differ a little, as real ones do.
        self._requests += 1
        slow = 1.0 + self._jitter * _unit(self._seed, f"jitter{self._requests}", tuple(prompt_ids))
        prefill_s = self._prefill * len(prompt_ids)
        decode_s = self._decode * slow * max(len(out) - 1, 0)
        self._now += prefill_s + self._decode * slow * bool(out) + decode_s
        return Generation(token_ids=tuple(out), ttft_s=prefill_s + self._decode * slow, decode_s=decode_s)

    def score(self, token_ids: Sequence[int], start: int) -> list[TokenScore]:
        """Scores from the same distribution the decode path reads."""
        ids = list(token_ids)
        self._now += self._prefill * len(ids)
        out = []
        for t in range(max(start, 1), len(ids)):
            dist = self._distribution(tuple(ids[max(0, t - self._context) : t]))
            top1, top1_lp = dist.candidates[0]
            out.append(TokenScore(ids[t], dist.logprob(ids[t]), dist.rank(ids[t]), top1, top1_lp))
        return out

    def decode(self, token_ids: Sequence[int]) -> str:
        """Toy-tokenizer text."""
        return toy_tokenizer.decode(token_ids)

    def close(self) -> None:
        """Nothing to release."""

    def _pick_next(self, dist: Distribution) -> int:
        # The decode path's choice: greedy, the top candidate. The seam sabotage tests override.
        return dist.candidates[0][0]

    def _make_distribution(self, tail: tuple[int, ...]) -> Distribution:
        rng = random.Random(_digest(self._seed, "dist", tail))  # noqa: S311 - a seeded model, not cryptography
        # Candidates avoid pad/eos/bos so that generated text stays text.
        ids = rng.sample(range(3, self._vocab), self._k)
        logits = [max(self._spread * rng.gauss(0.0, 1.0), self._floor + 0.5) for _ in ids]
        others = self._vocab - self._k
        log_z = _logsumexp([*logits, self._floor + math.log(others)])
        ranked = sorted(zip(ids, (lg - log_z for lg in logits), strict=True), key=lambda c: (-c[1], c[0]))
        return Distribution(tuple(ranked), self._floor - log_z)


def _digest(seed: int, purpose: str, ids: tuple[int, ...]) -> int:
    text = f"{seed}:{purpose}:{','.join(map(str, ids))}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _unit(seed: int, purpose: str, ids: tuple[int, ...]) -> float:
    return _digest(seed, purpose, ids) / 2**64


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
