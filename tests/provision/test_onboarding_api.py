"""The onboarding README's API reference names every endpoint the backend serves."""

from __future__ import annotations

import re
from pathlib import Path

from collab_backend.main import create_app
from provision.onboarding import readme

TEMPLATE = Path(readme.__file__).with_name(readme.TEMPLATE)


def _shape(path: str) -> str:
    """`/v1/results/{result_id}?x=` and `/v1/results/{id}` are the same endpoint."""
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])


def test_every_backend_endpoint_is_in_the_onboarding_reference() -> None:
    reference = TEMPLATE.read_text(encoding="utf-8").split("\n## API reference\n", 1)[1]
    cells = [line.split(" | ")[0] for line in reference.splitlines() if line.startswith("| `")]
    documented = {_shape(path) for cell in cells for path in re.findall(r"(/v1[^` ]*)", cell)}
    served = {_shape(path) for path in create_app().openapi()["paths"] if path.startswith("/v1")}
    assert len(served) > 20  # the backend's own list, not an empty one
    assert served - documented == set()
