"""A deterministic fake engine: a sparse next-token model over the toy vocabulary and a simulated clock.

The next-token distribution depends only on the last few tokens: a handful of candidate tokens
get pseudo-random logits seeded by that context, every other token shares one low logit. Greedy
generation and teacher-forced scoring read the same distribution, so an honest fake passes the
decode checks exactly; tests subclass `_pick_next` to sabotage the decode path alone. Time is
simulated (prefill and decode cost per token, a per-prompt jitter), so the protocol and its pass
planning are tested with exact, repeatable numbers and no sleeping.

The simulated clock also follows the submission's engine config (`simulated_cost`): quantized
weights, an fp8 KV cache, async scheduling, eager mode and speculative decoding each change what
a token costs, the
way they would on a GPU, so different submissions give different (still proxy) figures and a
local demo has something to compare. The factors are a made-up sketch of the GPU's behaviour,
not a measurement; the output tokens never depend on them, and the numbers stay `proxy` and never
rank.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from gemma_eval import toy_tokenizer
from gemma_eval.engines.base import EngineInfo, Generation, SpecStats, TokenScore

FAMILY = "fake-v1"

# The simulated cost model: what one decode step costs relative to plain bf16, by setting.
WEIGHT_FACTORS = {"4bit": 0.55, "8bit": 0.75, "float32": 2.0}
KV_FP8_FACTOR = 0.99  # a small win, inside the noise margin of the Gemma spec
ASYNC_SCHEDULING_FACTOR = 0.99  # scheduling overlaps the forward pass: a small, lossless win, inside the noise
EAGER_FACTOR = 1.25  # no CUDA graphs
VERIFY_OVERHEAD_PER_DRAFT = 0.03  # a verification step grows with the tokens it checks
# Speculative methods: (chance that each drafted token is accepted, cost of drafting one token).
SPEC_METHODS: dict[str, tuple[float, float]] = {
    "mtp": (0.8, 0.04),
    "eagle": (0.75, 0.05),
    "eagle3": (0.78, 0.05),
    "dflash": (0.75, 0.05),
    "dspark": (0.78, 0.05),
    "draft_model": (0.7, 0.15),
    "ngram": (0.45, 0.0),
    "ngram_gpu": (0.45, 0.0),
}
DEFAULT_SPEC_METHOD = (0.7, 0.1)  # a drafter model named without a method
_FOUR_BIT = re.compile(r"w4a16|w4a8|int4|4bit|awq|gptq|nvfp4|mxfp4|bnb|bitsandbytes", re.IGNORECASE)
_EIGHT_BIT = re.compile(r"fp8|w8a8|w8a16|int8|8bit", re.IGNORECASE)


@dataclass(frozen=True)
class SimulatedCost:
    """What the fake engine's clock charges, from a submission's engine config.

    Attributes:
        decode_factor: Multiplies the cost of one decode step (1.0 is plain bf16).
        draft_tokens: Tokens drafted per speculative step; 0 without speculative decoding.
        acceptance: Simulated chance that each drafted token is accepted.
        draft_cost: Cost of drafting one token, relative to one decode step.
        settings: The settings that changed the cost, in words.
    """

    decode_factor: float = 1.0
    draft_tokens: int = 0
    acceptance: float = 0.0
    draft_cost: float = 0.0
    settings: tuple[str, ...] = ()

    @property
    def step_factor(self) -> float:
        """Cost of one speculative step (verification included), relative to one plain decode step."""
        return 1.0 + self.draft_tokens * (VERIFY_OVERHEAD_PER_DRAFT + self.draft_cost)


def _weights(engine_args: Mapping[str, object]) -> str | None:
    quantization = str(engine_args.get("quantization") or "")
    model = str(engine_args.get("model") or "")
    for text in (model, quantization):
        if _FOUR_BIT.search(text):
            return "4bit"
        if _EIGHT_BIT.search(text):
            return "8bit"
    if quantization:
        return "4bit"
    if engine_args.get("dtype") == "float32":
        return "float32"
    return None


def simulated_cost(engine_args: Mapping[str, object]) -> SimulatedCost:
    """The fake clock's cost model for one engine config (the submission's arguments as the engine got them).

    Quantized weights (a `quantization` argument, or a model id naming one, e.g. `w4a16`) make each
    step cheaper, float32 dearer; an fp8 KV cache and async scheduling help a little; eager mode costs; a
    `speculative_config` with `num_speculative_tokens` drafts that many tokens per step, each
    accepted with the method's simulated chance.
    """
    factor, settings = 1.0, []
    weights = _weights(engine_args)
    if weights is not None:
        factor *= WEIGHT_FACTORS[weights]
        settings.append(f"{weights} weights")
    if str(engine_args.get("kv_cache_dtype") or "").startswith("fp8"):
        factor *= KV_FP8_FACTOR
        settings.append("fp8 KV cache")
    if engine_args.get("async_scheduling") is True:
        factor *= ASYNC_SCHEDULING_FACTOR
        settings.append("async scheduling")
    if engine_args.get("enforce_eager") is True:
        factor *= EAGER_FACTOR
        settings.append("eager mode")
    spec = engine_args.get("speculative_config")
    tokens = spec.get("num_speculative_tokens") if isinstance(spec, Mapping) else None
    if isinstance(spec, Mapping) and isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
        method = str(spec.get("method") or "")
        acceptance, draft_cost = SPEC_METHODS.get(method, DEFAULT_SPEC_METHOD)
        settings.append(f"speculative decoding ({method or 'draft model'}, {tokens} tokens)")
        return SimulatedCost(factor, tokens, acceptance, draft_cost, tuple(settings))
    return SimulatedCost(factor, settings=tuple(settings))


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
        self.cost = simulated_cost(engine_args or {})
        self.info = EngineInfo(
            kind="fake",
            family=FAMILY,
            tokenizer=toy_tokenizer.NAME,
            vocab_size=vocab_size,
            proxy=True,
            description="fake engine: a seeded sparse next-token model with a simulated clock; the model is not loaded"
            + (f" (clock simulates {', '.join(self.cost.settings)})" if self.cost.settings else ""),
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
        step_s = self._decode * slow * self.cost.decode_factor
        prefill_s = self._prefill * len(prompt_ids)
        steps, spec = self._decode_steps(max(len(out) - 1, 0), tuple(prompt_ids))
        decode_s = step_s * steps
        self._now += prefill_s + step_s * bool(out) + decode_s
        return Generation(token_ids=tuple(out), ttft_s=prefill_s + step_s, decode_s=decode_s, spec=spec)

    def _decode_steps(self, tokens: int, prompt_ids: tuple[int, ...]) -> tuple[float, SpecStats | None]:
        """Decode steps (in plain-step units) that `tokens` tokens after the first cost, and the draft counters."""
        cost = self.cost
        if not cost.draft_tokens:
            return float(tokens), None
        rng = random.Random(_digest(self._seed, f"accept{self._requests}", prompt_ids))  # noqa: S311 - simulation
        histogram = [0] * (cost.draft_tokens + 1)
        made = steps = 0
        while made < tokens:
            accepted = 0
            while accepted < cost.draft_tokens and rng.random() < cost.acceptance:
                accepted += 1
            accepted = min(accepted, tokens - made - 1)  # the request ends at its last token
            histogram[accepted] += 1
            steps += 1
            made += accepted + 1  # the accepted drafts and the target's own next token
        spec = SpecStats(
            draft_tokens=steps * cost.draft_tokens,
            accepted_tokens=sum(k * n for k, n in enumerate(histogram)),
            steps=steps,
            accepted_histogram=tuple(histogram),
        )
        return steps * cost.step_factor, spec

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
