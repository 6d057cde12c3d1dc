"""A CPU stand-in engine: a tiny, randomly initialised Gemma 4 built from a config, offline.

It has the real architecture's moving parts (sliding and global attention layers, KV-shared
layers, per-layer embeddings, a final logit soft-cap), so masking, KV-cached greedy decoding and
prefill scoring are exercised for real, but nothing is downloaded and nothing it measures ranks.
Its vocabulary is the toy tokenizer's. Greedy decoding runs token by token on a KV cache; scoring
is one full forward pass; the two agree up to float near-ties, which is exactly what the
self-consistency check relies on. `_pick_next` is the decode path's only choice, the seam that
tests sabotage.

torch and transformers are imported when the engine is built, never at module import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gemma_eval import toy_tokenizer
from gemma_eval.engines.base import EngineInfo, Generation, TokenScore
from gemma_eval.errors import InfrastructureError

FAMILY = "tiny-gemma4-v1"
FALLBACK_FAMILY = "tiny-gemma3-v1"

# The E4B layout shrunk: a global layer after every few sliding ones, the last layers reuse the
# KV of earlier ones, per-layer embeddings, soft-capped logits. initializer_range 0.1 gives
# margins between the top two tokens from ~0.02 to ~1 nat, so near-ties and clear choices both occur.
TINY_GEMMA4: dict[str, Any] = {
    "vocab_size": toy_tokenizer.VOCAB_SIZE,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 6,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "global_head_dim": 64,
    "layer_types": [
        "sliding_attention",
        "sliding_attention",
        "full_attention",
        "sliding_attention",
        "sliding_attention",
        "full_attention",
    ],
    "sliding_window": 32,
    "num_kv_shared_layers": 2,
    "vocab_size_per_layer_input": toy_tokenizer.VOCAB_SIZE,
    "hidden_size_per_layer_input": 16,
    "max_position_embeddings": 4096,
    "final_logit_softcapping": 30.0,
    "initializer_range": 0.1,
    "pad_token_id": toy_tokenizer.PAD,
    "eos_token_id": toy_tokenizer.EOS,
    "bos_token_id": toy_tokenizer.BOS,
}

# The nearest family, for a transformers without Gemma 4: the same shape minus the Gemma 4 parts.
TINY_GEMMA3: dict[str, Any] = {
    key: value
    for key, value in TINY_GEMMA4.items()
    if key
    not in {"global_head_dim", "num_kv_shared_layers", "vocab_size_per_layer_input", "hidden_size_per_layer_input"}
}


class TransformersEngine:
    """The tiny Gemma 4 on CPU in float32.

    Args:
        seed: Seed of the random initialisation; the stored sample baseline uses 0.
        engine_args: The submission's engine arguments, recorded but not applied.
        architecture: `gemma4`, or `gemma3` (the nearest family; used automatically when the
            installed transformers has no Gemma 4).
        threads: torch threads; one by default, since the tiny model's operations are too small
            to gain from more and spinning threads slow everything down on a shared CPU.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        engine_args: dict[str, object] | None = None,
        architecture: str = "gemma4",
        threads: int | None = 1,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise InfrastructureError(f"the transformers engine needs torch and transformers: {exc}") from exc
        if architecture == "gemma4" and not hasattr(transformers, "Gemma4ForCausalLM"):
            architecture = "gemma3"
        if architecture == "gemma4":
            config: Any = transformers.Gemma4TextConfig(**TINY_GEMMA4)
            model_class: Any = transformers.Gemma4ForCausalLM
            family = FAMILY
        elif architecture == "gemma3":
            config = transformers.Gemma3TextConfig(**TINY_GEMMA3)
            model_class = transformers.Gemma3ForCausalLM
            family = FALLBACK_FAMILY
        else:
            raise InfrastructureError(f"unknown tiny architecture {architecture!r}; use gemma4 or gemma3")
        if threads is not None:
            torch.set_num_threads(threads)
        self._torch = torch
        self._cache_type = transformers.DynamicCache
        # Build under a private generator state, so the weights depend on `seed` alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._model = model_class(config).eval()
        self._config = config
        self.info = EngineInfo(
            kind="transformers",
            family=family,
            tokenizer=toy_tokenizer.NAME,
            vocab_size=toy_tokenizer.VOCAB_SIZE,
            proxy=True,
            description=f"tiny random {architecture} (seed {seed}, {self._parameters()} parameters) on CPU; "
            "the submission's model is not loaded",
            versions={"torch": torch.__version__, "transformers": transformers.__version__},
            engine_args=dict(engine_args or {}),
        )

    def clock(self) -> float:
        """Wall seconds (performance counter)."""
        return time.perf_counter()

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        """Greedy decoding on a KV cache, one token per forward pass."""
        torch = self._torch
        stops = set() if ignore_eos else {toy_tokenizer.EOS, *stop_token_ids}
        out: list[int] = []
        started = time.perf_counter()
        first_at = started
        with torch.inference_mode():
            cache = self._cache_type(config=self._config)
            step = self._model(input_ids=torch.tensor([list(prompt_ids)]), past_key_values=cache, use_cache=True)
            while len(out) < max_new_tokens:
                token = self._pick_next(step.logits[0, -1].float())
                if not out:
                    first_at = time.perf_counter()
                out.append(token)
                if token in stops or len(out) == max_new_tokens:
                    break
                step = self._model(
                    input_ids=torch.tensor([[token]]), past_key_values=step.past_key_values, use_cache=True
                )
        ended = time.perf_counter()
        return Generation(token_ids=tuple(out), ttft_s=first_at - started, decode_s=ended - first_at)

    def score(self, token_ids: Sequence[int], start: int) -> list[TokenScore]:
        """One forward pass; the log-softmax at position t-1 scores the token at t."""
        torch = self._torch
        ids = list(token_ids)
        first = max(start, 1)
        if first >= len(ids):
            return []
        with torch.inference_mode():
            logits = self._model(input_ids=torch.tensor([ids])).logits[0].float()
            logprobs = torch.log_softmax(logits[first - 1 : len(ids) - 1], dim=-1)
            targets = torch.tensor(ids[first:])
            chosen = logprobs.gather(1, targets[:, None])[:, 0]
            top_lp, top_id = logprobs.max(dim=-1)
            ranks = 1 + (logprobs > chosen[:, None]).sum(dim=-1)
        return [
            TokenScore(int(t), float(lp), int(r), int(i), float(tl))
            for t, lp, r, i, tl in zip(
                targets.tolist(), chosen.tolist(), ranks.tolist(), top_id.tolist(), top_lp.tolist(), strict=True
            )
        ]

    def decode(self, token_ids: Sequence[int]) -> str:
        """Toy-tokenizer text."""
        return toy_tokenizer.decode(token_ids)

    def close(self) -> None:
        """Drop the model."""
        del self._model

    def _pick_next(self, logits: Any) -> int:
        # The decode path's choice: greedy argmax (ties go to the lowest id, as in torch.argmax).
        return int(logits.argmax())

    def _parameters(self) -> str:
        count = sum(p.numel() for p in self._model.parameters())
        return f"{count / 1e6:.2f}M"
