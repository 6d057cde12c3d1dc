"""The token's own permissions and the check-only `jobs` resource, end to end on the Hub fake.

Every output of the CLI is scanned for the token (`run`); whoami shapes the kit does not know
must never crash the plan nor block it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from plan_harness import ADMIN_ORG, ORG, TOKEN

from collab_testing.hub import FakeHub
from provision.cli import main
from provision.hub.token_scopes import (
    JOB_WRITE,
    KNOWN_PERMISSIONS,
    REPO_WRITE,
    TokenScopes,
    check_permission,
    parse_whoami,
)
from provision.paths import CHALLENGE_SCHEMA, schemas_dir
from provision.plan.observe import known_job_flavors

WITHOUT_JOBS = {
    "global": [],
    "scoped": [
        {"entity": {"type": "org", "name": org}, "permissions": ["repo.content.read", "repo.write", "org.read"]}
        for org in (ORG, ADMIN_ORG)
    ],
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert TOKEN not in output, "the token leaked into the output"
    return code, output


def jobs_action(document: dict[str, Any]) -> dict[str, Any]:
    [action] = [a for a in document["actions"] if a["address"] == "jobs"]
    return action


def test_plan_json_shows_the_jobs_check(collab: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "plan", "--json", str(collab))
    assert code == 2
    document = json.loads(out)
    assert document["format_version"] == 1 and document["blockers"] == []
    jobs = jobs_action(document)
    assert document["actions"][-1]["address"] == "jobs"  # checked last, after what it needs
    assert (jobs["resource"], jobs["id"], jobs["action"], jobs["changes"]) == ("jobs", ORG, "no-op", [])
    assert jobs["details"] == {
        "namespace": ORG,
        "image": "vllm/vllm-openai:v0.33.0",
        "flavor": "a10g-small",
        "timeout_minutes": 45,
        "harness": f"{ORG}/gemma-collab-main-bucket/harness/run.py",
        "token_may_start_jobs": "granted",
        "launcher": {"observed": None, "desired": "hub"},
    }
    backend = next(a for a in document["actions"] if a["address"] == "space.backend")
    assert {"field": "variable COLLAB_JOBS", "before": None, "after": "hub"} in backend["changes"]
    cap = {"field": "variable COLLAB_JOBS_ARGS", "before": None, "after": '["--ppl-cap", "2.42"]'}
    assert cap in backend["changes"]  # the type's job_args of this spec: the cap the leaderboard applies

    code, out = run(capsys, "apply", "--poll-interval", "0", str(collab))
    assert code == 0, out
    code, out = run(capsys, "plan", "--json", str(collab))
    document = json.loads(out)
    assert code == 0 and document["in_sync"] and "the Jobs settings check out" in document["why_empty"]
    assert jobs_action(document)["details"]["launcher"] == {"observed": "hub", "desired": "hub"}

    code, out = run(capsys, "status", "--json", str(collab))
    document = json.loads(out)
    assert code == 0 and document["drift"]["jobs"] == []
    token = document["observed"]["identity"]["token"]
    assert token["role"] == "fineGrained" and "job.write" in token["scoped"][ORG]
    assert "a10g-small" in document["observed"]["job_flavors"]
    code, out = run(capsys, "status", str(collab))
    assert code == 0 and "a10g-small in my-collab, token may start Jobs: yes; in sync" in out


def test_a_read_token_blocks_and_nothing_is_created(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.users[TOKEN].token_role = "read"  # noqa: S105  # a role name
    code, out = run(capsys, "plan", str(collab))
    assert code == 1
    assert "! blocked  token: the token is a read token: it can create nothing" in out
    assert "create a fine-grained token at https://huggingface.co/settings/tokens" in out
    assert "token may start Jobs in my-collab: no" in out
    code, out = run(capsys, "plan", "--json", str(collab))
    assert code == 1 and [b["address"] for b in json.loads(out)["blockers"]] == ["token"]
    code, out = run(capsys, "apply", "--poll-interval", "0", str(collab))
    assert code == 1 and not hub.buckets and not hub.spaces


def test_a_token_without_jobs_blocks_only_when_jobs_are_on(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.users[TOKEN].fine_grained = WITHOUT_JOBS
    code, out = run(capsys, "plan", str(collab))
    assert code == 1
    assert "! blocked  jobs: the token may not start Jobs in my-collab" in out
    assert "fix: give the token Jobs: write for my-collab (job.write)" in out
    code, out = run(capsys, "plan", "--json", str(collab))
    document = json.loads(out)
    assert [b["address"] for b in document["blockers"]] == ["jobs"]
    assert jobs_action(document)["details"]["token_may_start_jobs"] == "missing"  # noqa: S105  # a verdict

    spec = collab / "challenge.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("enabled: true", "enabled: false").replace("mode: jobs", "mode: manual"), "utf-8")
    code, out = run(capsys, "plan", "--json", str(collab))
    document = json.loads(out)
    assert code == 2 and document["blockers"] == [] and not [a for a in document["actions"] if a["resource"] == "jobs"]
    backend = next(a for a in document["actions"] if a["address"] == "space.backend")
    assert {"field": "variable COLLAB_JOBS", "before": None, "after": "off"} in backend["changes"]


def test_scopes_whoami_does_not_report_are_a_note(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.users[TOKEN].scopes_reported = False
    code, out = run(capsys, "plan", str(collab))
    assert code == 2 and "blocked" not in out
    assert "note: could not confirm the token may start Jobs in my-collab: whoami did not include" in out
    assert "token may start Jobs in my-collab: not confirmed (see the notes)" in out


def test_the_fakes_default_token_holds_what_the_collab_needs() -> None:
    hub = FakeHub()
    hub.add_user("organizer", TOKEN, {ORG: "admin", ADMIN_ORG: "admin"})
    scopes = parse_whoami(hub.whoami(token=TOKEN))
    assert scopes.problem is None
    for org in (ORG, ADMIN_ORG):
        for permission in (REPO_WRITE, JOB_WRITE):
            assert check_permission(scopes, permission, org)[0] == "granted"
        assert set(scopes.scoped[org] if scopes.scoped else ()) <= KNOWN_PERMISSIONS


ODD_WHOAMI: list[Any] = [
    {},
    {"auth": None},
    {"auth": "token"},
    {"auth": {"accessToken": []}},
    {"auth": {"accessToken": {"role": 3}}},
    {"auth": {"accessToken": {"role": "admin"}}},
    {"auth": {"accessToken": {"role": "fineGrained", "fineGrained": "all"}}},
    {"auth": {"accessToken": {"role": "fineGrained", "fineGrained": {"scoped": None}}}},
    {"auth": {"accessToken": {"role": "fineGrained", "fineGrained": {"global": "repo.write", "scoped": []}}}},
    {"auth": {"accessToken": {"role": "fineGrained", "fineGrained": {"scoped": [None, 1, "x", {"entity": None}]}}}},
    {
        "auth": {
            "accessToken": {
                "role": "fineGrained",
                "fineGrained": {"scoped": [{"entity": {"name": ORG}, "permissions": [None, "repo.write"]}]},
            }
        }
    },
    {  # an entry this kit cannot read beside a readable one for the same org: it may grant Jobs
        "auth": {
            "accessToken": {
                "role": "fineGrained",
                "fineGrained": {
                    "scoped": [
                        {"entity": {"type": "org", "name": ORG}, "permissions": ["repo.content.read"]},
                        {"entity": {"type": "org", "name": ORG}, "perms": ["job.write"]},
                    ]
                },
            }
        }
    },
]


@pytest.mark.parametrize("info", ODD_WHOAMI)
def test_odd_whoami_answers_never_crash_nor_block(info: dict[str, Any]) -> None:
    scopes = parse_whoami(info)
    assert TokenScopes.from_json(json.loads(json.dumps(scopes.as_json()))) == scopes
    for permission in (REPO_WRITE, JOB_WRITE):
        assert check_permission(scopes, permission, ORG)[0] == "unconfirmed"


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 4 else 5)
    leaves = [None, True, 7, "fineGrained", "repo.write", ORG]
    if pick < 5:
        return rng.choice(leaves)
    if pick < 7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["auth", "accessToken", "role", "fineGrained", "global", "scoped", "entity", "name", "permissions"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_random_whoami_shapes_never_crash() -> None:
    rng = random.Random(20240601)  # noqa: S311  # reproducible shapes, not secrets
    for _ in range(2000):
        info = {"auth": {"accessToken": _random_json(rng)}} if rng.random() < 0.7 else _random_json(rng)
        if not isinstance(info, dict):
            continue
        scopes = parse_whoami(info)
        assert TokenScopes.from_json(json.loads(json.dumps(scopes.as_json()))) == scopes
        for permission in (REPO_WRITE, JOB_WRITE):
            assert check_permission(scopes, permission, ORG)[0] in ("granted", "missing", "unconfirmed")


def test_every_flavor_the_spec_accepts_is_one_the_library_knows() -> None:
    """Else a valid spec would be blocked by the plan's flavor check (upgrading huggingface_hub may drop one)."""
    schema = json.loads((schemas_dir() / CHALLENGE_SCHEMA).read_text(encoding="utf-8"))
    flavors = known_job_flavors()
    assert flavors is not None
    assert set(schema["$defs"]["job_flavor"]["enum"]) <= set(flavors)
