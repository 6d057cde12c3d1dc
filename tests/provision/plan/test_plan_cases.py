"""Plan cases: a spec and an observed state in, the actions (and blockers, and notes) out.

The plan is pure, so each case runs without a Hub: observed state comes from the case file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from plan_harness import TOKEN, load_cases, observed_from_case, patch_spec

from provision.plan.compute import compute_plan
from provision.plan.desired import desired_state
from provision.plan.observe import Observed
from provision.plan.views import plan_json, render_plan_text
from provision.spec import load_spec

# A Space README's front matter, as the template writes it, unless a case gives its own (`readmes`).
CARDS = {"dashboard": "---\nsdk: docker\nhf_oauth: true\nhf_oauth_authorized_org: my-collab\n---\n"}


@pytest.mark.parametrize("case", load_cases())
def test_plan_case(case: dict[str, Any], collab: Path) -> None:
    if "spec" in case:
        patch_spec(collab, case["spec"])
    shutil.rmtree(collab / "dashboard")  # a case names the optional Spaces' folders it has (`folders`)
    for folder in case.get("folders", []):
        (collab / folder).mkdir()
        card = case.get("readmes", {}).get(folder, CARDS.get(folder, "---\nsdk: docker\n---\n"))
        (collab / folder / "README.md").write_text(card, encoding="utf-8")
    desired = desired_state(load_spec(collab), collab, TOKEN)
    observed = Observed.from_json(observed_from_case(case, desired))
    plan = compute_plan(
        desired, observed, adopt=case.get("adopt", False), overwrite_readme=case.get("overwrite_readme", False)
    )

    got = {a.address: a for a in plan.actions}
    for address in case.get("absent", []):
        assert address not in got, f"{address} is planned"
    if not any(address.startswith("seed.") for address in case["expect"]):
        got = {k: v for k, v in got.items() if not k.startswith("seed.")}
    if "jobs" not in case["expect"]:
        got.pop("jobs", None)
    assert sorted(got) == sorted(case["expect"]), "planned resources differ"
    for address, expected in case["expect"].items():
        action = got[address]
        expected = {"action": expected} if isinstance(expected, str) else expected
        assert action.action == expected["action"], address
        for text in expected.get("diff_contains", []):
            assert action.diff is not None and text in action.diff, (address, text, action.diff)
        if "diff_contains" not in expected and action.action in ("create", "no-op"):
            assert action.diff is None, address
        for key, value in expected.get("details", {}).items():
            assert action.details is not None and action.details[key] == value, (address, key, action.details)
        if "changes" in expected:
            fields = [c if isinstance(c, str) else c["field"] for c in expected["changes"]]
            assert [c.field for c in action.changes] == fields, address
            changes = {c.field: c for c in action.changes}
            for item in expected["changes"]:
                if isinstance(item, dict):
                    for side in ("before", "after"):
                        if side in item:
                            assert getattr(changes[item["field"]], side) == item[side], (address, item["field"])
    assert [b.address for b in plan.blockers] == case.get("blockers", [])
    for expected_note in case.get("notes", []):
        assert any(expected_note in note for note in plan.notes), (expected_note, plan.notes)
    for unexpected in case.get("no_notes", []):
        assert not any(unexpected in note for note in plan.notes), (unexpected, plan.notes)
    for address, fragments in case.get("blocker_text", {}).items():
        shown = [f"{b.message} | {b.fix}" for b in plan.blockers if b.address == address]
        for fragment in fragments:
            assert any(fragment in text for text in shown), (address, fragment, shown)

    # Both views hold together with the data, and never the token; observed state round-trips.
    text = render_plan_text(plan, token_source="HF_TOKEN")  # noqa: S106  # a source name
    document = plan_json(plan)
    assert document["format_version"] == 1
    assert document["in_sync"] == (not plan.pending and not plan.blockers)
    assert json.loads(json.dumps(document)) == document
    if plan.in_sync:
        assert "No changes: in sync" in text
    assert TOKEN not in text and TOKEN not in str(document)
    assert Observed.from_json(observed.as_json()) == observed
