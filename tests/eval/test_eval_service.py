"""The eval service (verification mode `eval-space`): the type's cheap check over pending results, via the API.

The backend is the real app (`TestClient`) on the folder adapter; the checks run as the service
runs them, in a child process each (`run_in_process`), except where a test needs a check that
decides on cue (starvation, the race with a human).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from backend_world import World, auth, make_spec
from collab_eval.checker import Backend, BackendError, Checker, run_in_process
from fastapi.testclient import TestClient

from collab_testing.hub import ADMIN_TOKEN

TSP_YAML = """\
spec_version: 2
challenge: {org: acme, slug: fast, title: Tours, type: tsp}
scoring:
  score_field: tour_length
  direction: minimize
  required_fields: [tour, method]
  noise: {kind: none}
verification: {mode: eval-space, tolerance: 0}
board:
  channels: [{name: general}, {name: results}]
  promotions: {limit: 1000, window_seconds: 60}
"""
EXAMPLE = Path(__file__).resolve().parents[2] / "challenge_tsp" / "examples" / "results" / "valid"


class ClientBackend(Backend):
    """The checker's backend calls, through the app's TestClient instead of a socket."""

    def __init__(self, client: TestClient, token: str) -> None:
        super().__init__("http://testserver", token)
        self.client = client

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, path, json=body, headers=auth(self.token))
        if response.status_code >= 400:
            error = response.json()["error"]
            raise BackendError(error["code"], error["message"])
        return response.json()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World("local", tmp_path, make_spec(TSP_YAML), Clock())


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as c:
        yield c


def _example() -> dict[str, Any]:
    text = (EXAMPLE / "nearest-neighbour.md").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text.split("---\n")[1]))


def _claim(world: World, client: TestClient, token: str, name: str, **change: Any) -> str:
    fields = {**_example(), **change}
    text = "---\n" + yaml.safe_dump(fields) + "---\n\na tour\n"
    world.write(token, world.bucket_of("tourist"), {f"results/{name}.md": text.encode()})
    response = client.post("/v1/results", json={"agent_id": "tourist", "path": f"results/{name}.md"},
                           headers=auth(token))  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _checker(client: TestClient, world: World, check: Any, batch: int = 20) -> Checker:
    return Checker(ClientBackend(client, ADMIN_TOKEN), world.spec.model_dump(mode="json"), check, batch=batch)


def test_claims_are_rescored_a_forged_one_is_ruled_invalid_and_announced(world: World, client: TestClient) -> None:
    token = world.user("alice")
    world.agent(client, token, "tourist")
    honest = _claim(world, client, token, "honest")
    forged = _claim(world, client, token, "forged", tour_length=1000)
    checker = _checker(client, world, run_in_process(60.0))
    assert checker.one_pass() == 2
    shown = {rid: client.get(f"/v1/results/{rid}").json() for rid in (honest, forged)}
    assert (shown[honest]["verdict"], shown[honest]["verdict_by"]) == ("valid", "verifier:eval-space")
    assert "the tour's length is 298115, as claimed" in shown[honest]["verdict_reason"]
    assert (shown[forged]["verdict"], shown[forged]["verdict_by"]) == ("invalid", "verifier:eval-space")
    assert "not the claimed 1000" in shown[forged]["verdict_reason"]
    board = client.get("/v1/messages", params={"channel": "results"}).json()["items"]
    assert any(f"Result {forged} by @tourist is now **invalid** (verifier:eval-space)" in m["body"] for m in board)
    assert client.get("/v1/verification/pending").json() == {"items": [], "next": None}
    assert checker.one_pass() == 0  # nothing left to decide


def test_a_check_that_hangs_hits_its_timeout_and_decides_nothing() -> None:
    check = run_in_process(1.0, command=[sys.executable, "-c", "import time; time.sleep(120)"])
    started = time.monotonic()
    assert check({"id": "r1"}) is None
    assert time.monotonic() - started < 30
    broken = run_in_process(30.0, command=[sys.executable, "-c", "raise SystemExit('no type')"])
    assert broken({"id": "r1"}) is None


def test_undecided_old_results_never_starve_a_new_one(world: World, client: TestClient) -> None:
    token = world.user("alice")
    world.agent(client, token, "tourist")
    old = [_claim(world, client, token, f"old-{n}", method=f"variant {n}") for n in range(200)]
    looked: list[str] = []

    def undecided_but_the_newest(request: dict[str, Any]) -> dict[str, Any] | None:
        looked.append(request["id"])
        return {"verdict": "valid", "reason": "checked"} if request["id"] not in old else None

    checker = _checker(client, world, undecided_but_the_newest, batch=20)
    checker.one_pass()
    checker.one_pass()  # the walk is somewhere among the old ones now
    assert checker.decided == 0 and checker.cursor is not None
    new = _claim(world, client, token, "new", method="the newest")
    looked.clear()
    assert checker.one_pass() == 1
    assert looked[0] == new  # the new one first, then the next page of old ones
    assert client.get(f"/v1/results/{new}").json()["verdict"] == "valid"
    seen: set[str] = set()
    for _ in range(11):  # every old one is looked at again within a round of the cursor
        looked.clear()
        checker.one_pass()
        seen.update(looked)
    assert seen >= set(old)


def test_never_over_a_human_verdict(world: World, client: TestClient) -> None:
    token = world.user("alice")
    world.agent(client, token, "tourist")
    ruled, raced, held = (_claim(world, client, token, n, method=n) for n in ("ruled", "raced", "held"))
    human = {"verdict": "valid", "reason": "looked at it"}
    assert client.put(f"/v1/results/{ruled}/verdict", json=human, headers=auth(ADMIN_TOKEN)).status_code == 200
    on_hold = {"verdict": "pending", "reason": "asking the author"}  # a human's `pending`, over a verdict it takes back
    assert client.put(f"/v1/results/{held}/verdict", json=human, headers=auth(ADMIN_TOKEN)).status_code == 200
    assert client.put(f"/v1/results/{held}/verdict", json=on_hold, headers=auth(ADMIN_TOKEN)).status_code == 200
    listed = [i["id"] for i in client.get("/v1/verification/pending").json()["items"]]
    assert listed == [raced]  # a human's verdict, `pending` included, is never offered to the machine

    def a_human_rules_first(request: dict[str, Any]) -> dict[str, Any]:
        client.put(f"/v1/results/{request['id']}/verdict", json=human, headers=auth(ADMIN_TOKEN))
        return {"verdict": "invalid", "reason": "a late machine verdict"}

    assert _checker(client, world, a_human_rules_first).one_pass() == 0
    for rid, verdict in ((ruled, "valid"), (raced, "valid"), (held, "pending")):
        shown = client.get(f"/v1/results/{rid}").json()
        assert (shown["verdict"], shown["verdict_by"]) == (verdict, "human:organizer"), shown
    # Even without compare-and-set, a machine verdict never overrules a human one.
    late = {"verdict": "invalid", "reason": "late", "by": "eval-space"}
    assert client.put(f"/v1/results/{ruled}/verdict", json=late, headers=auth(ADMIN_TOKEN)).json()["verdict"] == "valid"


def test_a_participant_may_neither_set_a_machine_verdict_nor_pass_as_the_service(
    world: World, client: TestClient
) -> None:
    token = world.user("alice")
    world.agent(client, token, "tourist")
    rid = _claim(world, client, token, "mine")
    body = {"verdict": "valid", "reason": "trust me", "expected": "pending", "by": "eval-space"}
    refused = client.put(f"/v1/results/{rid}/verdict", json=body, headers=auth(token))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "NOT_ORGANIZER"
    checker = Checker(ClientBackend(client, token), world.spec.model_dump(mode="json"),
                      lambda r: {"verdict": "valid", "reason": "x"})  # fmt: skip
    with pytest.raises(BackendError, match="NOT_ORGANIZER"):
        checker.one_pass()
    assert client.get(f"/v1/results/{rid}").json()["verdict"] == "pending"
    other = {"verdict": "valid", "by": "jobs"}  # only the eval service's name is accepted
    assert client.put(f"/v1/results/{rid}/verdict", json=other, headers=auth(ADMIN_TOKEN)).status_code == 422
    assert client.get("/v1/verification/pending", params={"after": "r-none"}).json()["error"]["code"] == "NOT_FOUND"


def test_a_check_finds_the_collabs_type_package_where_no_kit_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a Space the kit is not installed (no entry point): the check imports the collab's `challenge_<type>`."""
    from collab_eval import one_check

    from provision.errors import ChallengeTypeError

    def unregistered(name: str) -> None:
        raise ChallengeTypeError(f"unknown challenge type '{name}'")

    monkeypatch.setattr("provision.challenge_types.load_type", unregistered)
    spec = make_spec(TSP_YAML).model_dump(mode="json")
    request = {"type": "tsp", "filename": "r.md", "frontmatter": _example(), "body": "", "spec": spec}
    assert one_check.check(request) == {
        "verdict": "valid",
        "reason": "recomputed on uniform-1000-seed5081: the tour's length is 298115, as claimed",
    }
    with pytest.raises(ModuleNotFoundError):
        one_check.check({**request, "type": "nosuch"})
