"""The Gemma challenge evaluator: tokens/s of one engine config, with the checks that make it honest.

This package travels alone: it is uploaded with `run.py` to the collab's central bucket and run
inside the job container, so it imports only the standard library, and each engine module
imports its own dependencies (torch, transformers, vllm) lazily, when that engine is opened.
"""

EVALUATOR_NAME = "gemma-eval"
EVALUATOR_VERSION = "1.0.0"
