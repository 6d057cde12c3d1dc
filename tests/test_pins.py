"""The kit and the backend Space must talk to the Hub with the same huggingface_hub."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pin(lines: list[str]) -> str:
    [pin] = [re.sub(r"\s", "", line) for line in lines if re.match(r"huggingface[_-]hub", line, re.IGNORECASE)]
    return pin.replace("-", "_").lower()


def test_huggingface_hub_is_pinned_alike_everywhere() -> None:
    kit = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    backend = (ROOT / "template" / "backend" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    collab = (ROOT / "template" / "pyproject.toml.jinja").read_text(encoding="utf-8").splitlines()
    collab_pin = [line.split("#")[0].strip().strip('",') for line in collab if "huggingface_hub" in line]
    assert _pin(kit) == _pin(backend) == _pin(collab_pin) == "huggingface_hub==2.4.0"


def test_the_backend_test_tools_are_in_both_test_extras() -> None:
    """The backend's tests ship into every collab: its test extra holds what they import, as the kit's does."""
    kit = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    collab = (ROOT / "template" / "pyproject.toml.jinja").read_text(encoding="utf-8")
    [line] = [line for line in collab.splitlines() if line.startswith("test = [")]
    collab_test = set(re.findall(r'"([^"]+)"', line))
    for tool in ("hypothesis", "schemathesis"):
        [pin] = [r for r in kit["test"] if re.match(tool + r"\b", r)]
        assert pin in collab_test, f"{pin} is in the kit's test extra but not the collab's"
