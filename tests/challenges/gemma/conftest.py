"""Fixtures of the Gemma harness tests; helpers live in gemma_helpers.py.

The harness runs from its own folder in a job (`python3 run.py`), so its package `gemma_eval` is
put on sys.path here, the same way, before any test module imports it; the organizer scripts'
folder and the vLLM surface reader too.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from gemma_helpers import HARNESS, SAMPLE, SCRIPTS, SHORT, VLLM_SURFACE

for folder in (HARNESS, SCRIPTS, VLLM_SURFACE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture
def short_params() -> Any:
    """Protocol parameters for short runs (a non-standard protocol)."""
    from gemma_eval.params import Params

    return Params().with_overrides(SHORT, source="tests")


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled sample set."""
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE, target)
    return target
