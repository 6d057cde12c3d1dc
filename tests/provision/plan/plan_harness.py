"""Helpers of the provisioning tests: the test token, the fake's organizer, quick waits, plan cases.

Plan cases (cases/*.yaml) write the observed state down as data: `state: in_sync` starts a
resource from exactly what the spec asks for, and the other keys change it from there, so each
case shows only its drift.

The token: `token:` is whoami's `auth.accessToken` as the Hub would send it (parsed like a real
answer); without it, the fake's default fine-grained token with the permissions the collab needs.
`job_flavors:` replaces the Jobs hardware names of the installed huggingface_hub. Cases whose
`expect` names no `jobs` do not check the jobs resource; `absent: [ADDRESS, ...]` says which
addresses must not be planned at all.

The central bucket's seed (`seed:`) starts in sync whenever the central bucket exists; its keys:
`readme_absent`, `readme_tool_wrote: <text>` (a README the tool wrote from an older spec),
`readme_edited: <text>` (an organizer's edit), `no_record` (no `.collab/seed.json`),
`harness_changed_in_source`, `harness_changed_in_bucket`, `harness_missing`, `harness_stale`
(lists of paths relative to the harness folder) and `index_absent`. Cases whose `expect` names
no `seed.*` address do not check the seed.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from collab_testing.hub import FakeUser
from provision.hub.token_scopes import parse_whoami
from provision.onboarding.readme import VERIFICATION_INDEX
from provision.plan.apply import WaitPolicy
from provision.plan.desired import Desired
from provision.plan.observe import known_job_flavors
from provision.plan.seed import README_PATH

TOKEN = "hf_provisionTestToken0123456789abcdef"  # noqa: S105  # a fake token: what every test scans output for
ORG, ADMIN_ORG, USER = "my-collab", "my-collab-admin", "organizer"
CASES = Path(__file__).parent / "cases"


def no_wait() -> WaitPolicy:
    """Polls without sleeping; the fake's builds finish after a poll or two."""
    clock = iter(range(10**6))
    return WaitPolicy(timeout=50, interval=1, sleep=lambda _s: None, clock=lambda: float(next(clock)))


def patch_spec(collab: Path, patch: dict[str, Any]) -> None:
    """Deep-merge `patch` into the collab's challenge.yaml."""
    path = collab / "challenge.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))

    def merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(data, patch)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def default_access_token() -> dict[str, Any]:
    """whoami's `auth.accessToken` for the fake organizer's default token."""
    return FakeUser(USER, TOKEN, {ORG: "admin", ADMIN_ORG: "admin"}).whoami()["auth"]["accessToken"]


def observed_from_case(case: dict[str, Any], desired: Desired) -> dict[str, Any]:
    """The JSON form of observed state (see `Observed.from_json`), expanded from a case's shorthand."""
    identity = dict(case.get("identity", {"user": USER, "roles": {ORG: "admin", ADMIN_ORG: "admin"}}))
    access = case.get("token", default_access_token())
    identity["token"] = parse_whoami({"auth": {"accessToken": access}}).as_json()
    buckets = {}
    for bucket in desired.buckets:
        given = copy.deepcopy(case.get("buckets", {}).get(bucket.name, {"state": "absent"}))
        state = given.pop("state", "in_sync")
        base: dict[str, Any] = {"id": bucket.id, "exists": False}
        if state == "in_sync":
            base = {"id": bucket.id, "exists": True, "private": bucket.private, "total_files": 1}
            base["marker"] = desired.collab
        buckets[bucket.name] = {**base, **given}
    spaces = {}
    for space in desired.spaces:
        given = copy.deepcopy(case.get("spaces", {}).get(space.name, {"state": "absent"}))
        state = given.pop("state", "in_sync")
        base = {"id": space.id, "exists": False}
        if state == "in_sync":
            base = {
                "id": space.id,
                "exists": True,
                "sdk": "docker",
                "private": space.private,
                "stage": "RUNNING",
                "hardware": space.hardware,
                "sleep_time": space.sleep_time,
                "variables": dict(space.variables),
                "secrets": list(space.secrets),
                "files": {".gitattributes": "0" * 40, **space.files},
            }
        variables = {**base.get("variables", {}), **given.pop("variables", {})}
        for key in given.pop("drop_variables", []):
            variables.pop(key)
        secrets = [s for s in base.get("secrets", []) if s not in given.pop("drop_secrets", [])]
        files = {**base.get("files", {}), **given.pop("files", {})}
        spaces[space.name] = {**base, "variables": variables, "secrets": secrets, "files": files, **given}
        if not spaces[space.name]["exists"]:
            spaces[space.name] = {"id": space.id, "exists": False}
    central = buckets.get("central", {})
    seed = observed_seed_from_case(case.get("seed", {}), desired) if central.get("exists") else None
    flavors = case.get("job_flavors", known_job_flavors()) if desired.jobs is not None else None
    return {"identity": identity, "buckets": buckets, "spaces": spaces, "seed": seed, "job_flavors": flavors}


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def observed_seed_from_case(given: dict[str, Any], desired: Desired) -> dict[str, Any] | None:
    """The JSON form of `ObservedSeed`: in sync with `desired`, then changed by the case's keys."""
    seed = desired.seed
    if seed is None:
        return None
    if given.get("state") == "absent":
        return {"readme": None, "record": {}, "hub_hashes": {}, "record_unreadable": False}
    readme: str | None = seed.readme
    record = {README_PATH: {"sha256": _sha(seed.readme), "hub_hash": _sha(seed.readme)}}
    hashes = {README_PATH: _sha(seed.readme), VERIFICATION_INDEX: _sha("{}\n")}
    for path, local in seed.harness.items():
        record[path] = {"sha256": local.sha256, "hub_hash": local.sha256}
        hashes[path] = local.sha256
    if "readme_tool_wrote" in given:
        readme = given["readme_tool_wrote"]
        record[README_PATH] = {"sha256": _sha(readme), "hub_hash": _sha(readme)}
        hashes[README_PATH] = _sha(readme)
    if "readme_edited" in given:
        readme = given["readme_edited"]
        hashes[README_PATH] = _sha(readme)
    if given.get("readme_absent"):
        readme = None
        hashes.pop(README_PATH)
    for rel in given.get("harness_changed_in_source", []):
        record[seed.harness_prefix + rel]["sha256"] = "0" * 64
    for rel in given.get("harness_changed_in_bucket", []):
        hashes[seed.harness_prefix + rel] = "f" * 64
    for rel in given.get("harness_missing", []):
        hashes.pop(seed.harness_prefix + rel)
    for rel in given.get("harness_stale", []):
        record[seed.harness_prefix + rel] = {"sha256": "1" * 64, "hub_hash": "1" * 64}
        hashes[seed.harness_prefix + rel] = "1" * 64
    if given.get("index_absent"):
        hashes.pop(VERIFICATION_INDEX)
    if given.get("no_record"):
        record = {}
    return {"readme": readme, "record": record, "hub_hashes": hashes, "record_unreadable": False}


def load_cases() -> list[Any]:
    return [
        pytest.param(yaml.safe_load(path.read_text(encoding="utf-8")), id=path.stem)
        for path in sorted(CASES.glob("*.yaml"))
    ]
