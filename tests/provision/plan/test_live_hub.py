"""Opt-in: plan against the live Hub (`pytest --run-hub`, with HF_TOKEN set).

Read-only: it plans and never applies. Point COLLAB_HUB_TEST_DIR at a rendered collab whose orgs
your token can see; without it, the default rendered collab is planned (its orgs may not exist,
which the plan must then show as resources to create, or as blockers naming the missing roles).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision.hub.client import connect
from provision.plan.session import prepare
from provision.plan.views import plan_json


@pytest.mark.hub
def test_plan_against_the_live_hub(collab: Path) -> None:
    target = Path(os.environ.get("COLLAB_HUB_TEST_DIR", collab))
    session = prepare(target, connect())
    document = plan_json(session.plan)
    assert document["format_version"] == 1
    assert {a["address"] for a in document["actions"]} >= {"bucket.central", "bucket.audit", "space.backend"}
    assert session.token.reveal() not in str(document)
