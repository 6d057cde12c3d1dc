"""Helpers of the Gemma harness tests: paths, short parameters, schemas, submissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
HARNESS = ROOT / "challenge_gemma" / "harness"
SCRIPTS = ROOT / "challenge_gemma" / "scripts"
SAMPLE = ROOT / "challenge_gemma" / "data" / "sample"
EXAMPLES = ROOT / "challenge_gemma" / "examples"
SCHEMAS = ROOT / "schemas"

# Short runs: the protocol's logic with a fraction of its tokens. Such runs are marked non-standard.
SHORT = {
    "output_len": 24,
    "warmup_requests": 2,
    "plan_after_prompts": 4,
    "spot_max_new_tokens": 32,
    "bootstrap_resamples": 200,
}


def bf16_submission(tmp_path: Path, **changes: Any) -> Path:
    """A copy of the bf16 example submission, with top-level keys changed."""
    folder = tmp_path / "submission"
    folder.mkdir(exist_ok=True)
    doc = json.loads((EXAMPLES / "valid" / "bf16_baseline" / "submission.json").read_text(encoding="utf-8"))
    (folder / "submission.json").write_text(json.dumps(doc | changes), encoding="utf-8")
    return folder


def load_schemas() -> dict[str, Any]:
    """Every schema of schemas/ by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")}


def schema_errors(document: Any, name: str) -> list[str]:
    """Errors of `document` against schemas/<name>, with cross-file references resolved."""
    import jsonschema
    import referencing
    from referencing.jsonschema import DRAFT202012

    schemas = load_schemas()
    registry = referencing.Registry().with_resources(
        (s["$id"], DRAFT202012.create_resource(s)) for s in schemas.values()
    )
    validator = jsonschema.Draft202012Validator(schemas[name], registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(document)]
