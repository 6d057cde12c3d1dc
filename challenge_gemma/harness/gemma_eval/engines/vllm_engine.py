"""The real engine: vLLM 0.33 in-process, batch 1, greedy. The only module that imports vllm.

It starts `vllm.LLM(**kwargs)` with exactly the arguments `submission.engine_kwargs` assembled:
the submission's checked settings plus what the evaluator owns (prefix caching off, raw logprobs,
per-request statistics on, seed 0, the speculative-decoding counters when a drafter runs, and the
official tokenizer: prompts arrive as ids and the tokenizer only decodes spot-check answers, so a
submission cannot ship one that rewrites them). Every request passes explicit `SamplingParams`
(`generation_sampling`, `score_sampling`), because vLLM's defaults (temperature 1, 16 tokens, or
the model's generation config) are not the protocol. The sampling arguments and the output fields
read here are held against vLLM 0.33's source by the snapshot test (surface.json).

- `generate`: `TokensPrompt` ids in, `outputs[0].token_ids` out; EOS ignored for timed requests.
  Engine timestamps (`metrics.first_token_ts`, `last_token_ts`, engine-core monotonic) and the
  per-request speculative-decoding counters are diagnostics; the harness times the call itself.
- `score`: one request with `prompt_logprobs=1` and `max_tokens=1`. `prompt_logprobs[t]` maps
  token ids to `Logprob(logprob, rank, ...)`: the token at t and the top-1 (entry 0 is None).

Start-up failures caused by the config are the submission's (`EngineFailure`); missing CUDA,
missing vllm, or an unreachable Hub are the infrastructure's (`InfrastructureError`).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gemma_eval.engines.base import EngineInfo, Generation, SpecStats, TokenScore
from gemma_eval.errors import EngineFailure, InfrastructureError
from gemma_eval.submission import sanitize
from gemma_eval.vllm_args import TOKENIZER

FAMILY = "gemma-4-E4B-it"
VOCAB_SIZE = 262144

# Hub errors that mean the submission named something that is not there.
_SUBMISSION_MISSING = {"RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError", "EntryNotFoundError"}


class VllmEngine:
    """vLLM's offline `LLM`, driven one request at a time.

    Args:
        kwargs: `vllm.LLM` arguments from `submission.engine_kwargs` (the evaluator's settings and tokenizer included).
        labels: Local paths and how to show them in the summary.
    """

    def __init__(self, kwargs: Mapping[str, Any], *, labels: Mapping[str, str]) -> None:
        try:
            import torch
        except ImportError as exc:
            raise InfrastructureError(f"the vllm engine needs torch: {exc}") from exc
        if not torch.cuda.is_available():
            raise InfrastructureError("the vllm engine needs a CUDA GPU and none is visible")
        try:
            import transformers
            import vllm
            from vllm import LLM, SamplingParams, TokensPrompt
        except ImportError as exc:
            raise InfrastructureError(f"vllm is not installed in this image: {exc}") from exc
        self._sampling = SamplingParams
        self._prompt = TokensPrompt
        arguments = dict(kwargs)
        try:
            self._llm = LLM(**arguments)
        except Exception as exc:  # whatever the config breaks is classified below
            raise _start_failure(exc) from exc
        vocab = _vocab_size(self._llm)
        if vocab is not None and vocab != VOCAB_SIZE:
            raise EngineFailure(f"the model's vocabulary has {vocab} ids; the evaluator's tokenizer has {VOCAB_SIZE}")
        self._tokenizer = self._llm.get_tokenizer()
        self.info = EngineInfo(
            kind="vllm",
            family=FAMILY,
            tokenizer=TOKENIZER,
            vocab_size=VOCAB_SIZE,
            proxy=False,
            description=f"vLLM {vllm.__version__} serving {labels.get(str(kwargs['model']), kwargs['model'])}",
            versions={"vllm": vllm.__version__, "torch": torch.__version__, "transformers": transformers.__version__},
            device={
                "gpu_name": torch.cuda.get_device_name(0),
                "cuda": str(torch.version.cuda),
            },
            engine_args=sanitize(arguments, labels),
        )

    def clock(self) -> float:
        """Wall seconds (performance counter)."""
        return time.perf_counter()

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        """One greedy request; see the module docstring."""
        sampling = self._sampling(**generation_sampling(max_new_tokens, ignore_eos, stop_token_ids))
        return read_generation(self._run(prompt_ids, sampling))

    def score(self, token_ids: Sequence[int], start: int) -> list[TokenScore]:
        """Teacher-forced scores from `prompt_logprobs=1`; see the module docstring."""
        ids = [int(t) for t in token_ids]
        rows = self._run(ids, self._sampling(**score_sampling())).prompt_logprobs or []
        return read_scores(rows, ids, start)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text with the official tokenizer, special tokens dropped."""
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def close(self) -> None:
        """Release the model and the GPU memory it held."""
        import torch

        del self._llm
        gc.collect()
        torch.cuda.empty_cache()

    def _run(self, ids: Sequence[int], sampling: Any) -> Any:
        try:
            outputs = self._llm.generate([self._prompt(prompt_token_ids=list(ids))], sampling, use_tqdm=False)
        except Exception as exc:  # a crash while serving is the engine config's failure
            raise EngineFailure(f"vLLM failed while serving a request: {_describe(exc)}") from exc
        if len(outputs) != 1:
            raise EngineFailure(f"vLLM returned {len(outputs)} outputs for one request")
        return outputs[0]


def generation_sampling(max_new_tokens: int, ignore_eos: bool, stop_token_ids: Sequence[int]) -> dict[str, Any]:
    """`SamplingParams` of one greedy request: explicit, so no default of vLLM's or the model's applies."""
    return {
        "n": 1,
        "temperature": 0.0,
        "max_tokens": max_new_tokens,
        "ignore_eos": ignore_eos,
        "stop_token_ids": None if ignore_eos else list(stop_token_ids),
        "seed": 0,
        "detokenize": False,
    }


def score_sampling() -> dict[str, Any]:
    """`SamplingParams` of one teacher-forced scoring request: the prompt's top-1 and own logprobs."""
    return {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 1, "detokenize": False}


def read_generation(output: Any) -> Generation:
    """A `RequestOutput` of one greedy request, as the harness's `Generation`."""
    completion = output.outputs[0]
    metrics = getattr(output, "metrics", None)
    first = _number(getattr(metrics, "first_token_ts", None))
    last = _number(getattr(metrics, "last_token_ts", None))
    return Generation(
        token_ids=tuple(int(t) for t in completion.token_ids),
        ttft_s=_number(getattr(metrics, "first_token_latency", None)),
        decode_s=last - first if first is not None and last is not None else None,
        spec=_spec_stats(getattr(completion, "spec_decode_metrics", None)),
    )


def read_scores(rows: Sequence[Any], ids: Sequence[int], start: int) -> list[TokenScore]:
    """Scores of positions `start` on from `prompt_logprobs` rows (id -> `Logprob(logprob, rank, ...)`)."""
    scores = []
    # A short or missing row yields fewer or unusable scores, which the callers' checks reject.
    for t in range(max(start, 1), min(len(ids), len(rows))):
        row = rows[t] or {}
        chosen = row.get(ids[t])
        top = min(row.items(), key=lambda item: item[1].rank, default=None)
        if chosen is None or top is None:
            scores.append(TokenScore(ids[t], math.nan, 0, -1, math.nan))
            continue
        scores.append(TokenScore(ids[t], float(chosen.logprob), int(chosen.rank), int(top[0]), float(top[1].logprob)))
    return scores


def _start_failure(exc: Exception) -> Exception:
    name = type(exc).__name__
    if name in _SUBMISSION_MISSING:
        return EngineFailure(f"the model or draft named by the submission is not available: {_describe(exc)}")
    if isinstance(exc, ConnectionError | TimeoutError) or "Connection" in name or "Timeout" in name:
        return InfrastructureError(f"the Hub could not be reached while loading the model: {_describe(exc)}")
    return EngineFailure(f"vLLM did not start with this config: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line[:300]}"


def _vocab_size(llm: Any) -> int | None:
    config = getattr(getattr(llm, "llm_engine", None), "model_config", None)
    getter = getattr(config, "get_vocab_size", None)
    try:
        return int(getter()) if callable(getter) else None
    except (TypeError, ValueError, AttributeError):
        return None


def _spec_stats(metrics: Any) -> SpecStats | None:
    """Per-request counters: `histogram[k]` is the number of verify steps that accepted k drafts."""
    histogram = getattr(metrics, "histogram", None)
    if metrics is None or histogram is None:
        return None
    counts = tuple(int(c) for c in histogram)
    steps = sum(counts)
    drafted = getattr(metrics, "num_draft_tokens", None)
    per_step = getattr(metrics, "num_spec_tokens", None)
    if drafted is None and per_step is not None:
        drafted = int(per_step) * steps
    return SpecStats(
        draft_tokens=int(drafted or 0),
        accepted_tokens=sum(k * c for k, c in enumerate(counts)),
        steps=steps,
        accepted_histogram=counts,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
