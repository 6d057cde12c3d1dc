"""The demo's run request: one agent publishes a submission for another to run, who claims and launches it.

The originator copies one of the type's valid examples into its bucket and publishes a run
request for it; the sponsor finds it in its digest, claims the lease, launches the job on its
own quota, follows it to its end and records the result, which carries both `originator` and
`sponsor` and names as its parent the originator's result the submission builds on, so the
credit rule has an improvement to share. Every request is one the onboarding README's API
reference lists.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from provision.challenge_types import ChallengeType
from provision.demo.agents import (
    Agent,
    Api,
    DemoError,
    Filed,
    digest_of,
    figure,
    frontmatter,
    read_readme,
    result_fields,
    say,
)
from provision.demo.guide import Call, Guide, reference_calls
from provision.local.target import LocalTarget
from provision.spec.model import ChallengeSpec

FOLDER = "requests"  # the originator's submission goes to requests/<example>/ of its bucket
JOB_WAIT = 120.0  # the longest the demo waits for the job (its own deadline may come first)
POLL = 0.25
CALLS = {
    "open": ("POST", "/v1/run-requests"),
    "claim": ("POST", "/v1/run-requests/{id}/claim"),
    "launch": ("POST", "/v1/run-requests/{id}/launch"),
    "show": ("GET", "/v1/run-requests/{id}"),
    "job": ("GET", "/v1/jobs/{id}"),
    "jobs": ("GET", "/v1/jobs"),
}


class Demo(Protocol):
    """What the step needs of the running demo (`provision.demo.script.Demo`)."""

    @property
    def api(self) -> Api: ...
    @property
    def guide(self) -> Guide: ...
    @property
    def kind(self) -> ChallengeType: ...
    @property
    def spec(self) -> ChallengeSpec: ...
    @property
    def target(self) -> LocalTarget: ...
    @property
    def deadline(self) -> float: ...


def sponsored_run(demo: Demo, originator: Agent, sponsor: Agent, example: str, parent: Filed | None) -> str | None:
    """A run request for one of the type's valid examples, published, claimed, launched and recorded.

    Args:
        demo: The running demo.
        originator: The agent that publishes the request for a folder of its bucket.
        sponsor: The agent that claims it and launches it on its own quota.
        example: A folder of the type's `examples/valid/`.
        parent: The result the example builds on (the recorded result names it), or None.

    Returns:
        The id of the result the sponsor recorded; None when no job ran (no quota, or the time was up).

    Raises:
        DemoError: a request was refused, or the job did not end with a valid summary in time.
    """
    table = reference_calls(read_readme(demo.target))
    calls: dict[str, Call] = {}
    for name, (method, route) in CALLS.items():
        if (method, route) not in table:
            raise DemoError(f"the README's API reference does not list {method} {route}")
        calls[name] = table[(method, route)]
    api = demo.api
    used = _quota_used(demo, calls["jobs"], sponsor)
    if used is not None and used[0] >= used[1]:
        say(f"  {sponsor.agent_id} has used its {used[1]} job(s) of the last 24 h: no sponsored run this time")
        return None
    source = demo.kind.examples_dir / "valid" / example
    folder = f"{FOLDER}/{example}"
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        originator.write(f"{folder}/{path.relative_to(source).as_posix()}", path.read_bytes())
    call = calls["open"]
    body = call.body(agent_id=originator.agent_id, submission=folder, what=f"{example}, as a job",
                     why="my quota is better kept for the next idea")  # fmt: skip
    request: dict[str, Any] = api.call(call.method, call.url(), body, originator.token)
    rid = request["id"]
    say(f"  {originator.agent_id} published run request {rid} for {folder}/ of {originator.bucket}: "
        f"{request['what']} ({request['state']})")  # fmt: skip
    digest = demo.guide.digest
    listed = api.call(digest.method, digest.url(agent_id=sponsor.agent_id))["run_requests"]
    say(f"  {sponsor.agent_id}'s digest lists {len(listed)} open run request(s), {rid} among them: "
        f"{'yes' if any(r['id'] == rid for r in listed) else 'no'}")  # fmt: skip
    call = calls["claim"]
    claimed = api.call(call.method, call.url(id=rid), call.body(agent_id=sponsor.agent_id, minutes=10), sponsor.token)
    lease = claimed["lease"]
    say(f"  {sponsor.agent_id} claimed {rid}: lease held by {lease['holder']} until {lease['expires_at']}")
    call = calls["launch"]
    job = api.call(call.method, call.url(id=rid), call.body(agent_id=sponsor.agent_id), sponsor.token)
    say(f"  {sponsor.agent_id} launched {rid} as {job['id']}: originator {job['originator']}, sponsor "
        f"{job['sponsor']}, running {job['submission']['bucket']}/{job['submission']['path']}")  # fmt: skip
    ended = _follow(demo, calls["job"], job["id"])
    if ended is None:
        say(f"  time is up while {job['id']} runs: the backend stops it, uncharged, when it stops")
        return None
    summary = ended.get("summary") or {}
    if ended["status"] != "succeeded" or not summary.get("valid"):
        raise DemoError(f"the sponsored job {job['id']} ended {ended['status']}, not with a valid summary")
    after = _quota_used(demo, calls["jobs"], sponsor), _quota_used(demo, calls["jobs"], originator)
    say(f"  {job['id']} ended {ended['status']}; charged to {sponsor.agent_id} "
        f"({_used(after[0])} used), not to {originator.agent_id} ({_used(after[1])} used)")  # fmt: skip
    recorded = _file(demo, sponsor, job["id"], example, summary, parent)
    call = calls["show"]
    say(f"  run request {rid} is now {api.call(call.method, call.url(id=rid))['state']}")
    return recorded


def _used(quota: tuple[int, int] | None) -> str:
    return "?" if quota is None else f"{quota[0]} of {quota[1]}"


def _quota_used(demo: Demo, call: Call, agent: Agent) -> tuple[int, int] | None:
    listed = demo.api.call(call.method, call.url() + f"?agent={agent.agent_id}&limit=1")
    quota = (listed.get("quota") or {}).get("agent")
    return (int(quota["used"]), int(quota["limit"])) if quota else None


def _follow(demo: Demo, call: Call, job_id: str) -> dict[str, Any] | None:
    """Poll the job until it ends; None when the demo's time is up first."""
    limit = min(demo.deadline, time.monotonic() + JOB_WAIT)
    while True:
        view: dict[str, Any] = demo.api.call(call.method, call.url(id=job_id))
        if view["status"] not in ("queued", "running"):
            return view
        if time.monotonic() >= limit:
            if limit == demo.deadline:
                return None
            raise DemoError(f"{job_id} did not end within {JOB_WAIT:.0f} s (it is {view['status']})")
        time.sleep(POLL)


def _file(demo: Demo, sponsor: Agent, job_id: str, example: str, summary: dict[str, Any], parent: Filed | None) -> str:
    """The sponsor records the job's result, building on `parent`: the backend stamps who asked for it and who paid."""
    source = demo.kind.examples_dir / "valid" / example
    proxy = bool(summary.get("proxy"))
    found = {**demo.kind.demo.result_fields(source, summary), **summary}
    fields = result_fields(demo.guide.result_fields, found, f"{example}, a sponsored run ({job_id})", "agent-run",
                           [parent.id] if parent else [], digest_of(source))  # fmt: skip
    fields["job"] = job_id
    if proxy:
        fields["proxy"] = True
    note = "These are proxy numbers from a CPU stand-in; they are not a claim. " if proxy else ""
    path = f"results/sponsored-{example}.md"
    sponsor.write(path, frontmatter(fields, f"Ran a run request as {job_id}. {note}Summary: GET /v1/jobs/{job_id}"))
    call = demo.guide.result
    result = demo.api.call(call.method, call.url(), call.body(agent_id=sponsor.agent_id, path=path), sponsor.token)
    score = f"{demo.spec.scoring.score_field} {figure(result['score'])}{' (proxy)' if proxy else ''}"
    lineage = f"; builds on {parent.id} ({parent.agent}'s {parent.label})" if parent else ""
    say(f"  result {result['id']} by {sponsor.agent_id}: {score}, from {job_id}; originator "
        f"{result['originator']}, sponsor {result['sponsor']}{lineage}")  # fmt: skip
    return str(result["id"])
