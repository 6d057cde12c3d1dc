"""Opening an engine by kind; each engine module is imported only when its kind is asked for.

`vllm` is the real engine and the only one whose numbers rank. `transformers` (a tiny random
Gemma 4 on CPU) and `fake` (a seeded sparse model with a simulated clock) are stand-ins for tests
and the local demo: they get the same `vllm.LLM` arguments vLLM would (`engine_kwargs`), refuse
them where vLLM 0.33's start-up rules would (`vllm_args.start_problems`), record them, and serve
their own model.
"""

from __future__ import annotations

from gemma_eval.engines.base import Engine
from gemma_eval.errors import EngineFailure
from gemma_eval.params import Params
from gemma_eval.submission import Submission, engine_kwargs, sanitize
from gemma_eval.vllm_args import start_problems

KINDS = ("vllm", "transformers", "fake")


def open_engine(kind: str, submission: Submission, params: Params) -> Engine:
    """Start the engine of `kind` for a checked submission.

    Args:
        kind: One of `KINDS`.
        submission: The checked submission; stand-ins record its arguments without applying them.
        params: The evaluator's parameters.

    Raises:
        InfrastructureError: The engine's libraries or hardware are missing.
        EngineFailure: The submission's config does not start.
        ValueError: Unknown kind.
    """
    kwargs = engine_kwargs(submission, default_max_num_batched_tokens=params.default_max_num_batched_tokens)
    if kind == "vllm":
        from gemma_eval.engines.vllm_engine import VllmEngine

        return VllmEngine(kwargs, labels=submission.labels)
    if kind not in KINDS:
        raise ValueError(f"unknown engine {kind!r}; choose one of {', '.join(KINDS)}")
    if problems := start_problems(kwargs):
        raise EngineFailure(f"vLLM would not start with this config: {'; '.join(problems)}")
    shown = sanitize(kwargs, submission.labels)
    if kind == "transformers":
        from gemma_eval.engines.transformers_engine import TransformersEngine

        return TransformersEngine(engine_args=shown)
    from gemma_eval.engines.fake import FakeEngine

    return FakeEngine(engine_args=shown)
