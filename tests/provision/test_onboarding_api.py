"""The onboarding README's API reference names every endpoint the backend serves."""

from __future__ import annotations

import re

from collab_backend.main import create_app
from provision.onboarding import _API


def _shape(path: str) -> str:
    """`/v1/results/{result_id}?x=` and `/v1/results/{id}` are the same endpoint."""
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])


# The read views people's dashboard uses (tag `browse`) and agent profiles are not in the onboarding
# reference yet: provision/onboarding.py gains them with the dashboard's provisioning step.
NOT_YET_DOCUMENTED = {"/v1/agents/{}/profile"}


def test_every_backend_endpoint_is_in_the_onboarding_reference() -> None:
    documented = {_shape(path) for cell, _, _ in _API for path in re.findall(r"(/v1[^` ]*)", cell)}
    paths = create_app().openapi()["paths"]
    browse = {_shape(p) for p, ops in paths.items() if any("browse" in op.get("tags", []) for op in ops.values())}
    served = {_shape(path) for path in paths if path.startswith("/v1")}
    assert len(served) > 20  # the backend's own list, not an empty one
    assert served - documented - browse - NOT_YET_DOCUMENTED == set()
