"""The backend benchmark's verdict on its targets (`bench/backend.py`: the output's `targets`)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("bench_backend", ROOT / "bench" / "backend.py")
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

MET: dict[str, Any] = {
    "digest": {"p50_ms": 1.6},
    "digest_rps_16_connections": 3000.0,
    "raw_post_1_connection": {"p50_ms": 2.0},
    "raw_posts_16_connections": {"writes_per_s": 1900.0, "digest_during_burst": {"p99_ms": 6.0}},
    "promoted_posts_per_s": 420.0,
    "restart_from_snapshot_to_first_digest_s": 2.4,
    "memory_at_end": {"peak_mb": 1359.0},
}


def _run(size: str, **figures: Any) -> dict[str, Any]:
    out = copy.deepcopy(MET) | {"size": size}
    for path, value in figures.items():
        *parents, leaf = path.split("__")
        node = out
        for name in parents:
            node = node[name]
        node[leaf] = value
    return out


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_run_within_every_target_meets_each_that_holds_at_its_size(size: str) -> None:
    verdict = bench.targets(_run(size))
    assert verdict and all(verdict.values())
    assert ("restart from the snapshot to first digest <= 3 s" in verdict) == (size == "large")
    assert ("raw post p50 <= 4 ms at 1 connection" in verdict) == (size == "small")


@pytest.mark.parametrize(
    ("size", "figure", "value", "target"),
    [
        ("small", "raw_post_1_connection__p50_ms", 4.1, "raw post p50 <= 4 ms at 1 connection"),
        ("large", "raw_posts_16_connections__writes_per_s", 999.0, ">= 1,000 raw posts/s at 16 connections"),
        ("large", "raw_posts_16_connections__digest_during_burst__p99_ms", 10.2, ">= 1,000 raw posts/s"),
        ("large", "restart_from_snapshot_to_first_digest_s", 3.07, "restart from the snapshot"),
        ("large", "memory_at_end__peak_mb", 1501.0, "peak resident memory"),
        ("small", "digest__p50_ms", 2.1, "digest p50 <= 2 ms"),
    ],
)
def test_a_figure_past_its_target_fails_that_target_alone(size: str, figure: str, value: float, target: str) -> None:
    verdict = bench.targets(_run(size, **{figure: value}))
    failed = [name for name, met in verdict.items() if not met]
    assert len(failed) == 1 and failed[0].startswith(target)
