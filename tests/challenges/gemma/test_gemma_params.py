"""The parameter set, its documentation, calibration, and the task section."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from gemma_eval import calibrate
from gemma_eval.consistency import MARGIN_EDGES
from gemma_eval.errors import DataError
from gemma_eval.params import Params, describe
from gemma_helpers import HARNESS, ROOT, schema_errors

MARKDOWN = [
    ROOT / "challenge_gemma" / "task.md",
    HARNESS / "README.md",
    HARNESS / "CALIBRATION.md",
    ROOT / "challenge_gemma" / "data" / "README.md",
    ROOT / "challenge_gemma" / "scripts" / "README.md",
    ROOT / "challenge_gemma" / "examples" / "README.md",
    ROOT / "challenge_gemma" / "vllm_surface" / "README.md",
]


def test_calibration_doc_lists_every_parameter_with_its_default() -> None:
    text = (HARNESS / "CALIBRATION.md").read_text(encoding="utf-8")
    rows = {
        name: (kind, value.strip())
        for name, kind, value in re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]+) \|", text, re.M)
    }
    assert rows == {name: (kind, str(default)) for name, kind, default, _ in describe()}


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_in_the_docs_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def test_overrides_are_checked() -> None:
    params = Params().with_overrides({"output_len": 64, "consistency_margin_nats": 1}, source="t")
    assert params.output_len == 64 and params.consistency_margin_nats == 1.0
    assert params.overridden() == ["output_len", "consistency_margin_nats"]
    assert params.nonstandard() == ["output_len"]
    assert Params().with_overrides({"time_budget_s": 60}, source="t").nonstandard() == [], (
        "a budget is not the protocol"
    )
    for bad, message in [
        ({"output_len": 1.5}, "whole number"),
        ({"output_len": True}, "must be a number"),
        ({"output_len": "512"}, "must be a number"),
        ({"output_len": 0}, "must be positive"),
        ({"consistency_max_rate": 1.5}, "strictly between 0 and 1"),
        ({"spot_drop_points_hard": 1.0}, "at least spot_drop_points"),
        ({"margin": 0.1}, "unknown parameter 'margin'"),
    ]:
        with pytest.raises(DataError, match=message):
            Params().with_overrides(bad, source="t")
    with pytest.raises(DataError, match="is a protocol parameter; only threshold"):
        Params().with_overrides({"output_len": 64}, allowed="threshold", source="calibration.json")


def summary(tps: float, submission: str, counts: list[int], positions: int, top1: float) -> dict[str, Any]:
    return {
        "valid": True,
        "proxy": False,
        "tps": tps,
        "provenance": {"submission_sha256": submission},
        "consistency": {
            "positions": positions,
            "margin_histogram": {"edges_nats": list(MARGIN_EDGES), "counts": counts},
        },
        "agreement": {"top1": top1},
    }


def test_calibrate_suggests_thresholds_from_honest_runs(tmp_path: Path) -> None:
    near_ties = [3, 5, 2, 0, 0, 0, 0, 0]  # honest flips, all under 0.03 nats
    wider = [1, 2, 4, 1, 0, 0, 0, 0]  # an int4 run with a flip between 0.03 and 0.1
    runs = [summary(t, "a", near_ties, 65536, 0.97) for t in (300.0, 301.2, 299.1)]
    runs += [summary(t, "b", wider, 65536, 0.95) for t in (120.0, 120.5, 119.7, 120.2)]
    suggested = calibrate.suggest(runs)
    assert suggested["consistency_margin_nats"] == 0.1, "the smallest edge covering every honest near-tie"
    assert suggested["consistency_max_rate"] == calibrate.RATE_FLOOR
    assert suggested["agreement_top1_min"] == pytest.approx(0.93)
    sigma = calibrate.sigma_rel(runs)
    assert sigma is not None and 0.001 < sigma < 0.005
    paths = []
    for index, run in enumerate(runs):
        paths.append(tmp_path / f"{index}.json")
        paths[-1].write_text(json.dumps(run), encoding="utf-8")
    out = tmp_path / "calibration.json"
    assert calibrate.main(["--out", str(out), *map(str, paths)]) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert schema_errors(document, "gemma-calibration.schema.json") == []
    assert document["params"] == suggested and document["noise"]["sigma_rel"] == pytest.approx(sigma, abs=1e-6)


def test_calibrate_refuses_proxy_and_invalid_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(summary(300.0, "a", [0] * 8, 10, 1.0) | {"proxy": True}), encoding="utf-8")
    with pytest.raises(SystemExit):
        calibrate.main([str(path)])


def test_task_section_renders_for_the_default_gemma_spec(spec_of: Any) -> None:
    from provision.challenge_types import load_type

    spec = spec_of("gemma")
    text = load_type("gemma").task_section(spec)
    assert text.startswith("## ") and "${" not in text
    assert f"`{spec.scoring.score_field}`" in text and spec.jobs.flavor in text
