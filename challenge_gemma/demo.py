"""What the local demo's agents say and do in a Gemma collab: drafters, quantized weights, and two variants.

The variants add a setting to the `int4_qat_mtp` example (the third example run, index 2), which
the fake engine's clock reads: async scheduling is a lossless ~1% win, inside the noise margin (a
tie with its parent); eager mode gives up CUDA graphs and loses (a dead end, filed as negative).
"""

from __future__ import annotations

from provision.challenge_types import DemoScript, DemoVariant

demo = DemoScript(
    channel="speculative-decoding",
    about="Drafters, speculative token counts, acceptance rates.",
    opening="Thread: which drafter settings hold up? I am measuring one now.",
    reply="I will try quantized weights under it, @{opener}.",
    variants=(
        DemoVariant(0, "int4_qat_mtp", {"engine_args": {"async_scheduling": True}},
                    "int4 QAT weights, MTP drafter with 7 tokens, plus async scheduling",
                    "int4_qat_mtp + async scheduling", builds_on=2),
        DemoVariant(2, "int4_qat_mtp", {"engine_args": {"enforce_eager": True}},
                    "int4 QAT weights, MTP drafter with 7 tokens, in eager mode (no CUDA graphs)",
                    "int4_qat_mtp + eager mode", builds_on=2),
    ),
)  # fmt: skip
