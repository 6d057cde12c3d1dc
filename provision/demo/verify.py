"""The demo's verification (mode `jobs`): a forged claim refused, then the verifier's re-run and its verdict.

After the benchmark job, its agent files the same job again with a typed figure ten times what the
job measured: the backend refuses it (`FIGURE_MISMATCH`, naming both values). Then the demo
follows the job's own result until the verifier has re-run its submission (on the private set
when the audit bucket holds one, as local mode's is seeded with the type's stand-in private set,
else on the public set, as the verdict says) and ruled on it: the verdict and its reason (the
tolerance and the noise it was judged with), the public and the private figures side by side, the
gap monitor's reading (flagged when the private figure is worse by more than the noise), the
badge, and the verdict's announcement on the board, which mentions the owner.

Locally the job ran on the challenge type's CPU stand-in, so its result is a proxy, which the
verifier re-runs only in a rehearsal: the demo's backend runs with `COLLAB_VERIFY_REHEARSAL=1`,
and the verdict is labelled as one (`verifier:rehearsal`, a reason that starts `rehearsal:`); a
proxy never ranks whatever its verdict, so a rehearsal verifies nothing real. On real hardware
(`COLLAB_JOBS_CPU_ARGS=[]`) the job's result is real and the verifier rules as it would on the Hub.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import yaml

from provision.demo.agents import Agent, Api, DemoError, Filed, figure, frontmatter, say, shown
from provision.demo.guide import Guide
from provision.spec.model import ChallengeSpec

VERIFY_WAIT = 120.0  # the longest the demo waits for the verifier's verdict (its own deadline may come first)
VERIFY_POLL = 0.25
FORGED_FACTOR = 10  # the forged claim types this many times the job's figure
REHEARSAL_ENV = ("COLLAB_VERIFY_REHEARSAL", "1")  # the demo's backend rehearses re-runs on the stand-in


@dataclass(frozen=True)
class VerifyStep:
    """The verification step of the script, with what it needs of the running demo."""

    api: Api
    guide: Guide
    spec: ChallengeSpec
    deadline: float  # time.monotonic() at which the demo's time is up

    def run(self, agent: Agent, filed: Filed) -> None:
        """Forge a claim on the job `filed` came from (refused), then follow `filed` to its verdict.

        Raises:
            DemoError: the forged claim was recorded, or no verdict came in time.
        """
        result = self._result(filed.id)
        self.forge(agent, result)
        self.follow(result)

    def _result(self, result_id: str) -> dict[str, Any]:
        call = self.guide.results
        found: dict[str, Any] = self.api.call(call.method, f"{call.url()}/{result_id}")
        return found

    def forge(self, agent: Agent, result: dict[str, Any]) -> None:
        """File the job's result again with a typed score far above the job's: the backend must refuse it."""
        score_field = self.spec.scoring.score_field
        text = (agent.bucket_dir / result["source"]["path"]).read_text(encoding="utf-8")
        _, _, rest = text.partition("---\n")
        head, _, body = rest.partition("\n---\n")
        fields = yaml.safe_load(head) or {}
        forged = float(result["score"]) * FORGED_FACTOR
        fields[score_field] = forged
        path = f"results/forged-{result['id']}.md"
        agent.write(path, frontmatter(fields, body))
        call = self.guide.result
        say(f"  {agent.agent_id} files {result['job']}'s result again, typing {score_field} {figure(forged)} "
            f"({FORGED_FACTOR} times what the job measured): {path}")  # fmt: skip
        try:
            recorded = self.api.call(call.method, call.url(), call.body(agent_id=agent.agent_id, path=path),
                                     agent.token)  # fmt: skip
        except DemoError as refused:
            if "FIGURE_MISMATCH" not in str(refused):
                raise
            say(f"  refused: {shown(str(refused))}")
            return
        raise DemoError(f"the forged claim was recorded as {recorded['id']}: a figure above its job's must be refused")

    def follow(self, result: dict[str, Any]) -> None:
        """Poll the result until the verifier rules; show the verdict, both figures, the badge, the announcement."""
        rid, score_field = result["id"], self.spec.scoring.score_field
        started = time.monotonic()
        limit = min(self.deadline, started + VERIFY_WAIT)
        seen = ""
        while not (result["verdict_by"] or "").startswith("verifier:") or result["verdict"] == "pending":
            if result["verdict_reason"] and result["verdict_reason"] != seen:
                seen = result["verdict_reason"]
                say(f"  {rid} is pending: {shown(seen)}")
            if time.monotonic() >= limit:
                if limit == self.deadline:
                    say(f"  time is up before the verifier ruled on {rid}")
                    return
                raise DemoError(f"the verifier did not rule on {rid} within {VERIFY_WAIT:.0f} s: "
                                f"{result['verdict_reason'] or 'it was never re-run'}")  # fmt: skip
            time.sleep(VERIFY_POLL)
            result = self._result(rid)
        took = time.monotonic() - started
        say(f"  the verifier re-ran {rid}'s submission and ruled after {took:.1f} s: {result['verdict']} "
            f"({result['verdict_by']})")  # fmt: skip
        say(f"    {shown(result['verdict_reason'])}")
        private = (result["rerun_figures"] or {}).get(score_field)
        rerun = figure(private) if isinstance(private, int | float) else "-"
        which = "private" if "on the private set" in (result["verdict_reason"] or "") else "re-run on the public set"
        say(f"    {score_field}: public {figure(result['score'])} ({result['basis']}), {which} {rerun}")
        if result["gap"] is not None:
            flagged = "flagged (GET /v1/verification/gaps)" if result["gap_flag"] else "not flagged"
            say(f"    gap monitor: public minus private {figure(result['gap'])}, noise {figure(result['gap_noise'])}: "
                f"{flagged}")  # fmt: skip
        say(f"    badge: {badge(result)}")
        self._announcement(rid)

    def _announcement(self, rid: str) -> None:
        """The verdict's announcement on the board (the results channel, else general)."""
        for channel in ("results", "general"):
            listed = self.api.call("GET", f"/v1/messages?channel={channel}&limit=50")
            found = [m for m in listed["items"] if m["body"].startswith(f"Result {rid} by @")]
            if found:
                message = found[0]
                say(f"  [{message['channel']}] {message['author']}: {shown(message['body'])}")
                return
        raise DemoError(f"no announcement of {rid}'s verdict on the board")


def badge(result: dict[str, Any]) -> str:
    """The badge the verdict earns, as the demo shows it: a rehearsal's says so, and a proxy never ranks."""
    verdict, by = result["verdict"], result["verdict_by"] or ""
    words = {"valid": "verified", "invalid": "invalid (hidden from the leaderboard)"}.get(verdict, "pending")
    if by == "verifier:rehearsal":
        words += " (rehearsal: a stand-in's re-run, never a real verification)"
    if result["basis"] == "proxy":
        words += "; a proxy result, never ranked"
    return words
