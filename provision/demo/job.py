"""The demo's benchmark job: an agent launches one, follows it to its end and files its summary.

The requests are the onboarding README's (`POST /v1/jobs`, `GET /v1/jobs/{id}`, its logs, the
agent's jobs and quota). Locally the backend runs the harness as a subprocess with the type's CPU
arguments, so the figures are a stand-in's: filed as proxy, they never rank.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.challenge_types import ChallengeType
from provision.demo.agents import (
    Agent,
    Api,
    DemoError,
    Filed,
    digest_of,
    figure,
    frontmatter,
    read_json_object,
    result_fields,
    say,
    shown,
)
from provision.demo.guide import Guide, JobCalls
from provision.demo.views import figures
from provision.spec.model import ChallengeSpec

JOB_WAIT = 120.0  # the longest the demo waits for its job to end (its own deadline may come first)
JOB_POLL = 0.25  # seconds between two looks at the job
JOB_LOG_LINES = 5
JOB_FOLDER = "jobs"  # the job's submission goes to jobs/<example>/ of the agent's bucket


@dataclass(frozen=True)
class JobStep:
    """One job of the script, with what it needs of the running demo."""

    api: Api
    guide: Guide
    calls: JobCalls
    spec: ChallengeSpec
    kind: ChallengeType
    deadline: float  # time.monotonic() at which the demo's time is up

    def run(self, agent: Agent, example: str, parent: Filed | None) -> Filed | None:
        """Run one of the type's valid examples as `agent`'s job, follow it and file its summary.

        Args:
            agent: The agent that launches it, and whose quota it is charged to.
            example: A folder of the type's `examples/valid/`.
            parent: The local run of the same example, which the filed result builds on.

        Returns:
            The result filed from the job's summary; None when there is none to file (the agent's
            quota is used up, or the demo's time ran out first).

        Raises:
            DemoError: a request was refused, or the job did not end with a valid summary in time.
        """
        calls = self.calls
        source = self.kind.examples_dir / "valid" / example
        folder = f"{JOB_FOLDER}/{example}"
        quota = self._quota(agent)
        if quota is not None and quota["used"] >= quota["limit"]:
            say(f"  {agent.agent_id} has used its {quota['limit']} job(s) of the last 24 h (earlier runs of the "
                "demo on this collab): no job this time")  # fmt: skip
            return None
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            agent.write(f"{folder}/{path.relative_to(source).as_posix()}", path.read_bytes())
        say(f"  {agent.agent_id} copied {self.kind.package}/examples/valid/{example}/ to {folder}/ of {agent.bucket}")
        launch = calls.launch
        body = launch.body(agent_id=agent.agent_id, submission=folder, track=self._track(launch))
        view: dict[str, Any] = self.api.call(launch.method, launch.url(), body, agent.token)
        job_id = str(view["id"])
        say(f"  {launch.method} {launch.path} {json.dumps(body)} -> {job_id}: {view['status']}")
        ended = self._follow(job_id, view)
        if ended is None:
            return None
        summary = ended.get("summary") or {}
        charge = f"charged to {agent.agent_id}'s quota" if ended["charged"] else "not charged (refunded)"
        say(f"  {job_id} ended {ended['status']} (exit {ended['exit_code']}), {charge}: {shown(ended['reason'])}")
        if summary:
            say(f"  summary: {figures(summary, self.spec.scoring)}")
        logs = self.api.call(calls.logs.method, calls.logs.url(id=job_id) + f"?tail={JOB_LOG_LINES}")
        say(f"  its log, the last {len(logs['lines'])} line(s) ({calls.logs.method} {calls.logs.url(id=job_id)}):")
        for line in logs["lines"]:
            say(f"    | {shown(line)}")
        quota = self._quota(agent)
        if quota is not None:
            say(f"  {agent.agent_id}'s job quota: {quota['used']} of {quota['limit']} used in 24 h")
        if ended["status"] != "succeeded" or not summary.get("valid"):
            reasons = "; ".join(map(str, summary.get("reasons", []))) or ended["reason"]
            raise DemoError(f"the job on {folder}/ ended {ended['status']}, not a valid summary: {shown(reasons)}")
        return self._file(agent, job_id, example, source, summary, parent)

    def _follow(self, job_id: str, view: dict[str, Any]) -> dict[str, Any] | None:
        """Poll the job until it ends; None when the demo's time is up first (the backend stops it)."""
        call = self.calls.status
        started = time.monotonic()
        limit = min(self.deadline, started + JOB_WAIT)
        status = view["status"]
        while status in ("queued", "running"):
            if time.monotonic() >= limit:
                if limit == self.deadline:
                    say(f"  time is up while {job_id} is {status}: the backend stops it, uncharged, when it stops")
                    return None
                raise DemoError(f"{job_id} did not end within {JOB_WAIT:.0f} s (it is {status})")
            time.sleep(JOB_POLL)
            view = self.api.call(call.method, call.url(id=job_id))
            if view["status"] != status:
                status = view["status"]
                say(f"  {call.method} {call.url(id=job_id)}: {status} after {time.monotonic() - started:.1f} s")
        return view

    def _quota(self, agent: Agent) -> dict[str, int] | None:
        """The agent's charged launches in 24 h and its limit, from the agent's job list."""
        call = self.calls.listed
        listed = self.api.call(call.method, call.url() + f"?agent={agent.agent_id}&limit=1")
        quota = (listed.get("quota") or {}).get("agent")
        return {"used": int(quota["used"]), "limit": int(quota["limit"])} if quota else None

    def _track(self, launch: Any) -> str | None:
        """The track the results are filed for (the README's example), when the launch takes one."""
        track = self.guide.result_fields.get("track")
        names = [t.name for t in self.spec.scoring.tracks]
        return track if "track" in launch.optional and isinstance(track, str) and track in names else None

    def _file(
        self, agent: Agent, job_id: str, example: str, source: Path, summary: dict[str, Any], parent: Filed | None
    ) -> Filed:
        """File the job's summary as a result that builds on the local run of the same example."""
        described = read_json_object(source / "submission.json").get("description")
        what = f"{described if isinstance(described, str) else example}, measured by {job_id}"
        proxy = bool(summary.get("proxy"))
        launch = self.calls.launch
        body = (
            f"Measured by {job_id} ({launch} on `{JOB_FOLDER}/{example}/` of my bucket), run by the collab's "
            "job launcher. "
            + ("These are proxy numbers from a CPU stand-in; they are not a claim. " if proxy else "")
            + f"Summary: GET /v1/jobs/{job_id}"
        )
        found = {**self.kind.demo.result_fields(source, summary), **summary}
        fields = result_fields(
            self.guide.result_fields, found, what, "agent-run", [parent.id] if parent else [], digest_of(source)
        )
        fields["job"] = job_id
        if proxy:
            fields["proxy"] = True
        path = f"results/job-{example}.md"
        agent.write(path, frontmatter(fields, body))
        call = self.guide.result
        result = self.api.call(call.method, call.url(), call.body(agent_id=agent.agent_id, path=path), agent.token)
        filed = Filed(result["id"], agent.agent_id, float(result["score"]), dict(result["metrics"]),
                      tuple(result["parents"]), False, proxy, f"{example} (job)")  # fmt: skip
        score_field = self.spec.scoring.score_field
        lineage = f"; builds on {parent.id}, the local run of the same submission" if parent else ""
        flag = " (proxy)" if proxy else ""
        say(f"  result {result['id']} by {agent.agent_id}: {score_field} {figure(result['score'])}{flag}, "
            f"from {job_id}{lineage}")  # fmt: skip
        return filed
