"""Run requests on both storage adapters, with a scripted launcher: leases, races, expiry, sponsored launches."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from backend_world import Clock, World, auth, make_spec
from fastapi.testclient import TestClient
from jobs_world import JOBS_YAML, ScriptedLauncher, summary_bytes

from collab_backend.jobs.base import LauncherError
from collab_backend.services.job_endings import tick
from collab_backend.storage import Delete
from collab_backend.storage.hub import HubStorage


@pytest.fixture
def rw(jw: World) -> World:
    return jw  # the jobs world of conftest.py


@pytest.fixture
def rc(jc: TestClient) -> TestClient:
    return jc


@pytest.fixture
def people(rw: World, rc: TestClient) -> dict[str, str]:
    """alice's `speedy` has a submission; bob's `helper` and carol's `other` have quota to lend."""
    tokens = {name: rw.user(name) for name in ("alice", "bob", "carol")}
    for user, agent in (("alice", "speedy"), ("bob", "helper"), ("carol", "other")):
        rw.agent(rc, tokens[user], agent)
    rw.write(tokens["alice"], rw.bucket_of("speedy"), {"sub/submission.json": b'{"k": 1}', "sub/notes/a.txt": b"a"})
    return tokens


def post(client: TestClient, token: str, url: str, **body: Any) -> Any:
    return client.post(url, json=body, headers=auth(token))


def publish(client: TestClient, token: str, submission: str = "sub", **more: Any) -> Any:
    body = {"agent_id": "speedy", "submission": submission, "what": "int4 weights", "why": "out of quota",
            "expected": 118.0, **more}  # fmt: skip
    return post(client, token, "/v1/run-requests", **body)


def act(client: TestClient, token: str, rid: str, action: str, agent: str, **more: Any) -> Any:
    return post(client, token, f"/v1/run-requests/{rid}/{action}", agent_id=agent, **more)


def code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def quota_used(client: TestClient, agent: str) -> int:
    return int(client.get("/v1/jobs", params={"agent": agent}).json()["quota"]["agent"]["used"])


# -- the whole path -----------------------------------------------------------------------------
def test_a_sponsor_runs_the_originators_submission_on_its_own_quota(
    rw: World, rc: TestClient, people: dict[str, str], launcher: ScriptedLauncher
) -> None:
    opened = publish(rc, people["alice"], track="lossy")
    assert opened.status_code == 201, opened.text
    request = opened.json()
    rid = request["id"]
    assert (request["state"], request["originator"], request["lease"]) == ("open", "speedy", None)
    assert request["submission"] == {"bucket": "acme/fast-speedy", "path": "sub"}
    assert (request["what"], request["expected"], request["track"]) == ("int4 weights", 118.0, "lossy")
    claimed = act(rc, people["bob"], rid, "claim", "helper").json()
    assert claimed["state"] == "claimed" and claimed["lease"]["holder"] == "helper"
    launched = act(rc, people["bob"], rid, "launch", "helper")
    assert launched.status_code == 201, launched.text
    job = launched.json()
    assert (job["agent"], job["originator"], job["sponsor"], job["run_request"]) == ("helper", "speedy", "helper", rid)
    assert (job["submission"], job["track"]) == ({"bucket": "acme/fast-speedy", "path": "sub"}, "lossy")
    staged = launcher.requests[0]  # the launcher copies (locally) or mounts (Hub) the originator's folder
    assert (staged.submission_bucket, staged.submission_path) == ("acme/fast-speedy", "sub")
    assert sorted(f.path for f in staged.submission_files) == ["sub/notes/a.txt", "sub/submission.json"]
    assert (quota_used(rc, "helper"), quota_used(rc, "speedy")) == (1, 0)  # the sponsor pays, not the originator
    assert rc.get("/v1/jobs", params={"agent": "speedy"}).json()["items"] == []
    assert rc.get(f"/v1/run-requests/{rid}").json()["state"] == "launched"
    launcher.end(job["id"], stage="COMPLETED", exit_code=0, summary=summary_bytes(tps=120.0))
    tick(rw.ctx)
    done = rc.get(f"/v1/run-requests/{rid}").json()
    assert (done["state"], done["job"], done["sponsor"], done["lease"]) == ("done", job["id"], "helper", None)
    # Either side may record the result; both keep who asked and who paid.
    for token, agent, bucket in ((people["bob"], "helper", "helper"), (people["alice"], "speedy", "speedy")):
        rw.write(token, rw.bucket_of(bucket), {"r.md": f"---\njob: {job['id']}\n---\nran it\n".encode()})
        result = post(rc, token, "/v1/results", agent_id=agent, path="r.md")
        assert result.status_code == 201, result.text
        body = result.json()
        assert (body["agent"], body["originator"], body["sponsor"]) == (agent, "speedy", "helper")
        assert body["basis"] == "proxy"
        rw.record.settle()  # the files of the writes before are written
        stored = rw.storage.read(rw.spec.storage.central_bucket, f"results/{body['id']}-{agent}.md").decode()
        assert "originator: speedy" in stored and "sponsor: helper" in stored
    carol_file = {"r.md": f"---\njob: {job['id']}\n---\nnot mine\n".encode()}
    rw.write(people["carol"], rw.bucket_of("other"), carol_file)
    assert code(post(rc, people["carol"], "/v1/results", agent_id="other", path="r.md")) == "JOB_NOT_USABLE"
    rw.record.settle()  # the files of the writes before are written
    central = rw.spec.storage.central_bucket
    assert b'"originator": "speedy"' in rw.storage.read(central, f"jobs/{job['id']}/job.json")
    assert b'"what": "int4 weights"' in rw.storage.read(central, f"run_requests/{rid}.json")


def test_an_ordinary_job_and_its_result_name_no_originator(rw: World, rc: TestClient, people: dict[str, str]) -> None:
    job = post(rc, people["alice"], "/v1/jobs", agent_id="speedy", submission="sub").json()
    assert (job["originator"], job["sponsor"], job["run_request"]) == (None, None, None)


# -- leases -------------------------------------------------------------------------------------
def test_of_concurrent_claims_exactly_one_wins_and_the_others_learn_the_holder(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    claimants = []
    for i in range(8):
        token = rw.user(f"user{i}")
        rw.agent(rc, token, f"claimant-{i}")
        claimants.append((token, f"claimant-{i}"))
    rid = publish(rc, people["alice"]).json()["id"]
    barrier = threading.Barrier(len(claimants))

    def go(who: tuple[str, str]) -> Any:
        barrier.wait()
        return act(rc, who[0], rid, "claim", who[1])

    with ThreadPoolExecutor(max_workers=len(claimants)) as pool:
        answers = list(pool.map(go, claimants))
    won = [a for a in answers if a.status_code == 200]
    lost = [a for a in answers if a.status_code == 409]
    assert len(won) == 1 and len(lost) == len(claimants) - 1
    holder = won[0].json()["lease"]["holder"]
    expires = won[0].json()["lease"]["expires_at"]
    for answer in lost:
        assert code(answer) == "LEASE_HELD"
        assert holder in answer.json()["error"]["message"] and expires in answer.json()["error"]["message"]
    claims = [e for e in rw.record.state.run_requests[rid] if e.event == "claim"]
    assert [c.agent for c in claims] == [holder]  # the losers wrote nothing


def test_a_lease_expires_back_to_the_pool_and_renewal_release_are_the_holders(
    rw: World, rc: TestClient, people: dict[str, str], clock: Clock
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    rid = publish(rc, alice).json()["id"]
    lease = act(rc, bob, rid, "claim", "helper").json()["lease"]
    assert lease["expires_at"].startswith("2027-01-15T08:30")  # the clock's now + the default 30 minutes
    assert code(act(rc, carol, rid, "renew", "other")) == "LEASE_HELD"  # a non-holder cannot renew
    assert code(act(rc, carol, rid, "release", "other")) == "LEASE_HELD"
    assert code(act(rc, carol, rid, "launch", "other")) == "LEASE_HELD"
    clock.now += 20 * 60
    renewed = act(rc, bob, rid, "renew", "helper", minutes=15).json()
    assert renewed["lease"]["expires_at"].startswith("2027-01-15T08:35")  # now + 15 minutes
    clock.now += 15 * 60 + 1
    expired = rc.get(f"/v1/run-requests/{rid}").json()
    assert (expired["state"], expired["lease"]) == ("open", None)  # computed from the clock: no thread needed
    assert code(act(rc, bob, rid, "renew", "helper")) == "LEASE_NOT_HELD"
    assert code(act(rc, bob, rid, "launch", "helper")) == "LEASE_NOT_HELD"
    assert act(rc, carol, rid, "claim", "other", minutes=5).json()["lease"]["holder"] == "other"
    assert code(act(rc, bob, rid, "claim", "helper")) == "LEASE_HELD"
    released = act(rc, carol, rid, "release", "other").json()
    assert (released["state"], released["lease"]) == ("open", None)
    assert act(rc, bob, rid, "claim", "helper").status_code == 200
    assert quota_used(rc, "helper") == quota_used(rc, "other") == 0


def test_lease_bounds_and_claims_that_could_not_launch(rw: World, rc: TestClient, people: dict[str, str]) -> None:
    rid = publish(rc, people["alice"]).json()["id"]
    assert code(act(rc, people["bob"], rid, "claim", "helper", minutes=121)) == "VALIDATION_FAILED"
    assert code(act(rc, people["bob"], rid, "claim", "helper", minutes=0)) == "VALIDATION_FAILED"
    assert code(act(rc, people["alice"], rid, "claim", "speedy")) == "FORBIDDEN"  # not one's own
    assert code(act(rc, people["bob"], rid, "claim", "speedy")) == "AGENT_NOT_REGISTERED"  # not someone else's agent
    broke = rw.user("dave")
    rw.agent(rc, broke, "banned")  # its quota is 0
    assert code(act(rc, broke, rid, "claim", "banned")) == "QUOTA_EXCEEDED"
    assert code(act(rc, people["bob"], "rr-1800000000000-9", "claim", "helper")) == "RUN_REQUEST_UNKNOWN"
    assert rc.get(f"/v1/run-requests/{rid}").json()["state"] == "open"


# -- launching ----------------------------------------------------------------------------------
def test_only_the_holder_launches_once_and_a_refund_keeps_the_lease(
    rw: World, rc: TestClient, people: dict[str, str], launcher: ScriptedLauncher
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    rid = publish(rc, alice).json()["id"]
    assert code(act(rc, bob, rid, "launch", "helper")) == "LEASE_NOT_HELD"  # never claimed
    act(rc, bob, rid, "claim", "helper")
    assert act(rc, carol, rid, "launch", "other").status_code == 409
    assert code(act(rc, alice, rid, "launch", "speedy")) == "LEASE_HELD"  # not even the originator
    launcher.fail_next = LauncherError("no capacity")
    assert code(act(rc, bob, rid, "launch", "helper")) == "JOB_LAUNCH_FAILED"
    after = rc.get(f"/v1/run-requests/{rid}").json()
    assert (after["state"], after["lease"]["holder"], after["job"]) == ("claimed", "helper", None)  # refunded
    assert quota_used(rc, "helper") == 0
    job = act(rc, bob, rid, "launch", "helper").json()["id"]
    assert code(act(rc, bob, rid, "launch", "helper")) == "RUN_REQUEST_CLOSED"  # one run per request
    assert code(act(rc, alice, rid, "withdraw", "speedy")) == "RUN_REQUEST_CLOSED"
    assert rc.get(f"/v1/run-requests/{rid}").json()["jobs"] == [rc.get("/v1/jobs").json()["items"][1]["id"], job]


def test_concurrent_launches_by_the_holder_start_one_job(
    rw: World, rc: TestClient, people: dict[str, str], launcher: ScriptedLauncher
) -> None:
    rid = publish(rc, people["alice"]).json()["id"]
    act(rc, people["bob"], rid, "claim", "helper")
    barrier = threading.Barrier(4)  # the claim and 4 launches: within the raw-post limit (5 a minute)

    def go(_: int) -> int:
        barrier.wait()
        return int(act(rc, people["bob"], rid, "launch", "helper").status_code)

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(go, range(4)))
    assert statuses.count(201) == 1 and statuses.count(409) == 3
    assert len(launcher.requests) == 1 and quota_used(rc, "helper") == 1


def test_the_submission_is_checked_when_the_request_is_published(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    alice = people["alice"]
    for escape in ("../fast-helper/sub", "sub/../../x", "/etc", "a//b"):
        answer = publish(rc, alice, submission=escape)
        assert answer.status_code == 422 and code(answer) in ("INVALID_PATH", "VALIDATION_FAILED"), escape
    assert code(publish(rc, alice, submission="missing")) == "SUBMISSION_NOT_FOUND"
    rw.write(people["bob"], rw.bucket_of("helper"), {"theirs/x": b"1"})
    assert code(publish(rc, alice, submission="acme/fast-helper/theirs")) == "SUBMISSION_NOT_FOUND"
    assert code(publish(rc, people["bob"], agent_id="speedy")) == "AGENT_NOT_REGISTERED"
    assert code(publish(rc, alice, track="no-such")) == "VALIDATION_FAILED"
    assert code(publish(rc, alice, what="")) == "VALIDATION_FAILED"
    assert code(publish(rc, alice, why="x" * 2001)) == "VALIDATION_FAILED"
    assert code(publish(rc, alice, extra="field")) == "VALIDATION_FAILED"
    assert rw.record.state.run_request_order == []


def test_a_submission_removed_after_publishing_refuses_the_launch_uncharged(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    rid = publish(rc, people["alice"]).json()["id"]
    act(rc, people["bob"], rid, "claim", "helper")
    owner = HubStorage(rw.hub, token=people["alice"]) if rw.kind == "hub" else rw.local
    owner.batch("acme/fast-speedy", [Delete("sub/submission.json"), Delete("sub/notes/a.txt")])
    assert code(act(rc, people["bob"], rid, "launch", "helper")) == "SUBMISSION_NOT_FOUND"
    assert quota_used(rc, "helper") == 0 and rc.get(f"/v1/run-requests/{rid}").json()["state"] == "claimed"


def test_withdrawal_is_the_originators(rw: World, rc: TestClient, people: dict[str, str]) -> None:
    rid = publish(rc, people["alice"]).json()["id"]
    act(rc, people["bob"], rid, "claim", "helper")
    assert code(act(rc, people["bob"], rid, "withdraw", "helper")) == "FORBIDDEN"
    assert act(rc, people["alice"], rid, "withdraw", "speedy").json()["state"] == "withdrawn"
    assert code(act(rc, people["bob"], rid, "launch", "helper")) == "RUN_REQUEST_CLOSED"
    assert code(act(rc, people["carol"], rid, "claim", "other")) == "RUN_REQUEST_CLOSED"


# -- reading ------------------------------------------------------------------------------------
def test_lists_filter_by_state_page_and_survive_a_restart(
    rw: World, rc: TestClient, people: dict[str, str], launcher: ScriptedLauncher
) -> None:
    ids = [publish(rc, people["alice"], what=f"try {i}").json()["id"] for i in range(4)]
    act(rc, people["bob"], ids[1], "claim", "helper")
    act(rc, people["alice"], ids[2], "withdraw", "speedy")
    act(rc, people["carol"], ids[3], "claim", "other")
    act(rc, people["carol"], ids[3], "launch", "other")
    states = {r["id"]: r["state"] for r in rc.get("/v1/run-requests").json()["items"]}
    assert states == {ids[0]: "open", ids[1]: "claimed", ids[2]: "withdrawn", ids[3]: "launched"}
    assert [r["id"] for r in rc.get("/v1/run-requests", params={"state": "open"}).json()["items"]] == [ids[0]]
    page = rc.get("/v1/run-requests", params={"limit": 2}).json()
    assert [r["id"] for r in page["items"]] == [ids[3], ids[2]] and page["next"] == ids[2]
    rest = rc.get("/v1/run-requests", params={"limit": 2, "before": page["next"]}).json()
    assert [r["id"] for r in rest["items"]] == [ids[1], ids[0]] and rest["next"] is None
    assert code(rc.get("/v1/run-requests", params={"state": "lost"})) == "VALIDATION_FAILED"
    assert code(rc.get("/v1/run-requests", params={"before": "../x"})) == "VALIDATION_FAILED"
    assert code(rc.get("/v1/run-requests", params={"before": "rr-1800000000000-1"})) == "VALIDATION_FAILED"
    assert code(rc.get("/v1/run-requests/rr-1800000000000-1")) == "RUN_REQUEST_UNKNOWN"
    rc.__exit__(None, None, None)
    rw.restarted()
    with TestClient(rw.app) as again:
        states_after = {r["id"]: r["state"] for r in again.get("/v1/run-requests").json()["items"]}
        assert states_after == states
        assert code(act(again, people["alice"], ids[1], "launch", "speedy")) == "LEASE_HELD"


def test_the_digest_lists_open_requests_to_agents_with_quota_left(
    rw: World, rc: TestClient, people: dict[str, str]
) -> None:
    rid = publish(rc, people["alice"]).json()["id"]
    broke = rw.user("dave")
    rw.agent(rc, broke, "banned")
    shown = rc.get("/v1/digest/helper").json()
    assert [r["id"] for r in shown["run_requests"]] == [rid] and "cursor" in shown["inbox"]
    assert rc.get("/v1/digest/speedy").json()["run_requests"] == []  # its own
    assert rc.get("/v1/digest/banned").json()["run_requests"] == []  # no quota to lend
    act(rc, people["carol"], rid, "claim", "other")
    assert rc.get("/v1/digest/helper").json()["run_requests"] == []  # claimed: not open


def test_the_self_description_explains_run_requests(rc: TestClient) -> None:
    described = rc.get("/v1").json()["jobs"]["run_requests"]
    assert described["states"] == ["open", "claimed", "launched", "done", "withdrawn"]
    assert "30" in described["lease_rule"] and "sponsor" in described["launch"]
    paths = rc.get("/openapi.json").json()["paths"]
    for path in ("/v1/run-requests", "/v1/run-requests/{request_id}/claim", "/v1/run-requests/{request_id}/launch"):
        assert path in paths


def test_run_requests_are_refused_when_jobs_are_off(storage_kind: str, tmp_path: Path, clock: Clock) -> None:
    world = World(storage_kind, tmp_path, make_spec(JOBS_YAML), clock)  # no launcher: this backend runs none
    with TestClient(world.app) as client:
        token = world.user("alice")
        world.agent(client, token, "speedy")
        world.write(token, world.bucket_of("speedy"), {"sub/x": b"1"})
        assert code(publish(client, token)) == "JOBS_DISABLED"
        assert client.get("/v1/digest/speedy").json()["run_requests"] == []


# -- directions ---------------------------------------------------------------------------------
def test_a_request_naming_a_direction_counts_among_its_open_ones_until_claimed(
    rc: TestClient, people: dict[str, str]
) -> None:
    opened = post(rc, people["alice"], "/v1/directions", agent_id="speedy", name="int4", description="4-bit weights")
    assert opened.status_code == 201, opened.text

    def open_in_map() -> int:
        [row] = [d for d in rc.get("/v1/directions").json()["directions"] if d["name"] == "int4"]
        return int(row["open_run_requests"])

    unknown = publish(rc, people["alice"], direction="nowhere")
    assert (unknown.status_code, code(unknown)) == (404, "DIRECTION_UNKNOWN"), unknown.text
    assert "int4" in unknown.json()["error"]["hint"]
    assert open_in_map() == 0
    request = publish(rc, people["alice"], direction="int4").json()
    assert (request["direction"], open_in_map()) == ("int4", 1)
    publish(rc, people["alice"])  # one naming no direction counts nowhere
    assert open_in_map() == 1
    assert act(rc, people["bob"], request["id"], "claim", "helper").status_code == 200
    assert open_in_map() == 0  # held: no longer open to others
    assert act(rc, people["bob"], request["id"], "release", "helper").status_code == 200
    assert open_in_map() == 1
