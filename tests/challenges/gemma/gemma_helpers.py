"""Helpers of the Gemma harness tests: paths, short parameters, schemas, submissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
HARNESS = ROOT / "challenge_gemma" / "harness"
SCRIPTS = ROOT / "challenge_gemma" / "scripts"
VLLM_SURFACE = ROOT / "challenge_gemma" / "vllm_surface"
SAMPLE = ROOT / "challenge_gemma" / "data" / "sample"
EXAMPLES = ROOT / "challenge_gemma" / "examples"
SCHEMAS = ROOT / "challenge_gemma" / "schemas"
KIT_SCHEMAS = ROOT / "schemas"

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
    """The kit's schemas and the Gemma type's own (challenge_gemma/schemas/), by file name."""
    files = [*KIT_SCHEMAS.glob("*.json"), *SCHEMAS.glob("*.json")]
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in files}


def schema_errors(document: Any, name: str) -> list[str]:
    """Errors of `document` against the schema file `name`, references resolved offline as the contract does."""
    import jsonschema

    from challenge_gemma import challenge_type

    validator = jsonschema.Draft202012Validator(load_schemas()[name], registry=challenge_type.schema_registry())
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(document)]
