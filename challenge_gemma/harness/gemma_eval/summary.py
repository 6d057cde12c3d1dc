"""summary.json: every figure, the verdict with its reasons, and where the numbers came from.

The summary satisfies `challenge_gemma/schemas/gemma-summary.schema.json`: this type's figures,
on top of `schemas/job-summary.schema.json` (what every challenge type writes), which that schema
includes. It is written atomically, through a temporary file in the same folder, so a reader
never sees half of one, and it is written for invalid submissions too: only an infrastructure
failure leaves no summary. Non-finite numbers are written as null, since JSON has no infinity.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gemma_eval import EVALUATOR_NAME, EVALUATOR_VERSION
from gemma_eval.engines.base import EngineInfo

CHECKS = ("submission", "tps", "consistency", "ppl", "agreement", "spot")


def iso(timestamp: float) -> str:
    """UTC ISO 8601 time, to the second."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def params_sha256(params: Mapping[str, Any]) -> str:
    """Digest of the parameter set, stable across key order."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def base_provenance(started: float, job_id: str | None) -> dict[str, Any]:
    """What is known before any engine starts."""
    return {
        "evaluator": EVALUATOR_NAME,
        "evaluator_version": EVALUATOR_VERSION,
        "python_version": platform.python_version(),
        "job_id": job_id,
        "started_at": iso(started),
    }


def engine_provenance(info: EngineInfo) -> dict[str, Any]:
    """The engine's identity, versions, device and (sanitized) arguments."""
    device = dict(info.device)
    if info.kind == "vllm" and "driver_version" not in device:
        device.update(nvidia_smi())
    return {
        "engine": info.kind,
        "engine_family": info.family,
        "engine_description": info.description,
        "versions": dict(info.versions),
        "device": device,
        "engine_args": dict(info.engine_args),
    }


def nvidia_smi() -> dict[str, str]:
    """GPU name and driver version from nvidia-smi, or nothing when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {}
    try:
        done = subprocess.run(
            [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    first = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    name, _, driver = first.partition(",")
    return {"gpu_name": name.strip(), "driver_version": driver.strip()} if driver else {}


def finite(value: Any) -> Any:
    """A copy with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_summary(state_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write `summary.json` atomically into `state_dir` and return its path.

    Raises:
        OSError: The state folder cannot be created or written.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / "summary.json"
    text = json.dumps(finite(dict(summary)), indent=2, allow_nan=False) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=".summary-", suffix=".json", dir=state_dir)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
