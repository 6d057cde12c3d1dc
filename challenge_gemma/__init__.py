"""The Gemma challenge: make google/gemma-4-E4B-it decode fast with vLLM on one A10G.

The reference challenge type. It registers through the `collab.challenge_types` entry point,
exactly as a third-party type would; its harness and evaluator arrive with their own issue.
"""

from provision.challenge_types import ChallengeType

challenge_type = ChallengeType(
    name="gemma",
    title="Gemma 4 E4B fast decode",
    summary="Maximise vLLM decode tokens/s of google/gemma-4-E4B-it on one A10G, perplexity capped.",
)
