"""Opt-in: plan against the live Hub and check what the kit assumes about how it fails.

Run with `pytest --run-hub` and HF_TOKEN set. Read-only: it plans and never applies, and its one
write goes to a bucket that does not exist. Point COLLAB_HUB_TEST_DIR at a rendered collab whose
orgs your token can see; without it, the default rendered collab is planned (its orgs may not
exist, which the plan must then show as resources to create, or as blockers naming the missing
roles).
"""

from __future__ import annotations

import os
import uuid
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


@pytest.mark.hub
def test_the_live_hub_fails_as_the_kit_assumes() -> None:
    """What the offline contract test cannot see: the live Hub's error codes, whoami's keys, Xet's refusal.

    Nothing is written: the write goes to a bucket that does not exist, and is refused at the Xet token.
    """
    from huggingface_hub.errors import BucketNotFoundError

    from provision.hub.failures import classify

    token = os.environ["HF_TOKEN"]
    api = connect()
    info = api.whoami(token=token)
    missing = f"{info['name']}/collab-kit-no-such-bucket-{uuid.uuid4().hex[:12]}"
    with pytest.raises(BucketNotFoundError):  # the Hub sends X-Error-Code: RepoNotFound
        api.bucket_info(missing, token=token)
    orgs = info.get("orgs") or []
    assert all("roleInOrg" in org for org in orgs), "whoami no longer names the role in each org"
    access = info["auth"]["accessToken"]
    if access.get("role") == "fineGrained":
        assert "scoped" in access["fineGrained"], "whoami no longer carries a fine-grained token's scopes"
    with pytest.raises(ConnectionError) as refused:  # hf_xet's token request, answered 401/403/404
        api.batch_bucket_files(missing, add=[(b"never stored", "probe.txt")], token=token)
    failure = classify(refused.value)
    assert failure is not None and failure.kind in ("not_found", "denied"), refused.value
