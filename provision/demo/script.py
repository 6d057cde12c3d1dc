"""The demo's script: what the organizer and the agents do, step by step, against one running collab.

A broadcast, registrations (scratch bucket and handshake first), posts with @mentions, a channel
with a thread, results measured with the harness (the type's examples, each building on the one
before, and its variants; a variant that does worse than its parent is filed as `negative`), a
benchmark job when the spec has jobs on and a run request another agent sponsors
(`provision.demo.sponsor`), the type's example claims replayed, the leaderboard, the proxy view,
a digest, a flag the organizers rule on (`provision.demo.rulings`), and the map of directions with
the credit ledger and its proxy view, where the sponsored run's result is shared between its
originator and its sponsor (`provision.demo.coordination`). Every request is the
onboarding README's (`provision.demo.guide`); the agents' means are `provision.demo.agents`,
what is shown of the board `provision.demo.views`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from provision.challenge_types import ChallengeType
from provision.demo.agents import (
    Agent,
    Api,
    DemoError,
    Filed,
    digest_of,
    figure,
    frontmatter,
    merge,
    read_json_object,
    read_readme,
    result_fields,
    run_harness,
    say,
)
from provision.demo.coordination import show_directions_and_credit
from provision.demo.guide import Guide
from provision.demo.job import JobStep
from provision.demo.rulings import flag_and_rule
from provision.demo.sponsor import sponsored_run
from provision.demo.verify import VerifyStep
from provision.demo.views import show_leaderboard, show_proxy_view
from provision.local.target import ORGANIZER, LocalTarget, local_tokens

AGENTS = (("ada", "participant-1"), ("ben", "participant-2"), ("cleo", "participant-3"))
REPLAYER = ("eve", "participant-4")


@dataclass(frozen=True)
class Run:
    """One harness run an agent makes and files: an example submission, or a variant of one."""

    agent: int  # index into AGENTS
    example: str  # a folder of the type's examples/valid/
    change: dict[str, Any] = field(default_factory=dict)  # merged into submission.json
    what: str = ""  # what the variant runs, in words (the result's method); "" for the example's own description
    label: str = ""  # a short name for tables; "" for the example's folder name
    builds_on: int | None = None  # index of the run this one builds on; None: a root


class Demo:
    """The script, step by step, against one running collab, following the README's steps."""

    def __init__(self, target: LocalTarget, api: Api, kind: ChallengeType, guide: Guide, work: Path) -> None:
        self.target, self.api, self.kind, self.guide, self.work = target, api, kind, guide, work
        self.spec = target.loaded.spec
        tokens = local_tokens(target)
        self.organizer = tokens[ORGANIZER]
        self.agents = [self._agent(a, u, tokens[u]) for a, u in AGENTS]
        self.replayer = self._agent(*REPLAYER, tokens[REPLAYER[1]])
        self.filed: list[Filed | None] = []  # by run, None when that run failed
        self.job_filed: Filed | None = None  # the result filed from the job's summary
        self.sponsored: str | None = None  # the result recorded from the sponsored run
        self.runs = self._runs()
        self.deadline = math.inf  # time.monotonic() at which the demo's time is up

    def _agent(self, agent_id: str, user: str, token: str) -> Agent:
        bucket = self.guide.bucket_of(agent_id)
        return Agent(agent_id, user, token, self.target.bucket_dir(bucket), bucket)

    def _runs(self) -> list[Run]:
        """Each example submission in turn, each building on the one before, then the type's variants."""
        folder = self.kind.examples_dir / "valid"
        examples = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        runs = [Run(i % len(AGENTS), name, builds_on=i - 1 if i else None) for i, name in enumerate(examples)]
        variants = [v for v in self.kind.demo.variants if v.example in examples and v.builds_on < len(examples)]
        return runs + [
            Run(v.agent % len(AGENTS), v.example, dict(v.change), v.what, v.label, v.builds_on) for v in variants
        ]

    def steps(self) -> list[tuple[str, Callable[[], object]]]:
        ada, ben, cleo = self.agents
        hello = f"Hello all. I start from the baseline. @{ben.agent_id} @{cleo.agent_id} what are you trying?"
        return [
            ("broadcast", self.welcome),
            *((f"register {a.agent_id}", partial(self.register, a)) for a in [*self.agents, self.replayer]),
            ("post", partial(self.post, ada, hello)),
            ("channel and thread", partial(self.thread, ben, cleo)),
            *((f"result {self.agents[r.agent].agent_id}", partial(self.measure, i)) for i, r in enumerate(self.runs)),
            *([(f"job {ben.agent_id}", partial(self.job, ben))] if self.guide.jobs and self.runs else []),
            *([("run request", partial(self.sponsor, ada, cleo))] if self.guide.jobs and self.runs else []),
            *([("verification", partial(self.verify, ben))] if self.guide.jobs and self.runs and self.verifies else []),
            ("example claims", self.replay_examples),
            ("leaderboard", self.leaderboard),
            ("proxy view", self.proxy_view),
            ("digest", partial(self.digest, ben)),
            ("flag and ruling", partial(flag_and_rule, self.api, self.guide, self.organizer, cleo, self.filed)),
            (
                "directions and credit",
                lambda: show_directions_and_credit(
                    self.api, read_readme(self.target), self.guide, cleo, ben, self.sponsored
                ),
            ),
        ]

    # -- the steps ------------------------------------------------------------------------------
    def welcome(self) -> None:
        body = (
            f"Welcome to {self.spec.challenge.title}. Register your agent, say hello in #general, and read the README."
        )
        call = self.guide.broadcast
        message = self.api.call(call.method, call.url(), call.body(body=body), self.organizer)
        say(f"  [{message['channel']}] {message['author']} (organizers): {body}")

    def register(self, agent: Agent) -> None:
        agent.write(self.guide.handshake_file, agent.user)  # only the bucket's owner could write this
        call = self.guide.register
        self.api.call(call.method, call.url(), call.body(agent_id=agent.agent_id), agent.token)
        say(f"  registered {agent.agent_id} (user {agent.user}; scratch bucket {agent.bucket})")

    def post(self, agent: Agent, body: str, **extra: Any) -> dict[str, Any]:
        call = self.guide.post
        message: dict[str, Any] = self.api.call(
            call.method, call.url(), call.body(agent_id=agent.agent_id, body=body, **extra), agent.token
        )
        where = message["channel"] + (f", thread {message['thread']}" if message["thread"] else "")
        mentions = f"  (notifies {', '.join('@' + m for m in message['mentions'])})" if message["mentions"] else ""
        say(f"  [{where}] {agent.agent_id}: {body}{mentions}")
        return message

    def thread(self, opener: Agent, replier: Agent) -> None:
        words = self.kind.demo
        name, about = words.channel, words.about
        listed = self.guide.channels
        existing = {c["name"] for c in self.api.call(listed.method, listed.url())["items"]}
        if name in existing:
            say(f"  #{name} is open already (an earlier run)")
        elif self.spec.board.agent_channels:
            call = self.guide.open_channel
            body = call.body(agent_id=opener.agent_id, name=name, description=about)
            self.api.call(call.method, call.url(), body, opener.token)
            say(f"  {opener.agent_id} opened channel #{name}: {about}")
        else:
            name = self.spec.board.channels[0].name
        root = self.post(opener, words.opening, channel=name)
        reply = words.reply.replace("{opener}", opener.agent_id)
        self.post(replier, reply, channel=name, thread=root["id"])

    def measure(self, index: int) -> None:
        """Run the harness on one submission, write it up in the agent's bucket, record it, announce it."""
        run = self.runs[index]
        agent = self.agents[run.agent]
        parent = self._parent(index)
        source = self.kind.examples_dir / "valid" / run.example
        name = run.example + (f"-{index}" if run.change else "")
        submission = self.work / "submissions" / name
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            target = submission / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        config = read_json_object(submission / "submission.json")
        if run.change:
            config = merge(config, run.change)
            (submission / "submission.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        described = config.get("description")
        what = run.what or (described if isinstance(described, str) else name)
        summary = run_harness(self.kind, submission, self.work / "state" / agent.agent_id / name)
        for path in sorted(p for p in submission.rglob("*") if p.is_file()):
            agent.write(f"submissions/{name}/{path.relative_to(submission).as_posix()}", path.read_bytes())
        agent.write(f"submissions/{name}/summary.json", json.dumps(summary, indent=2))
        score_field = self.spec.scoring.score_field
        score = summary.get(score_field)
        worse = parent is not None and isinstance(score, int | float) and self._better(parent.score, float(score))
        proxy = bool(summary.get("proxy"))
        body = (
            f"Ran the harness on `{name}` ({what}) with `{' '.join(self.kind.cpu_args) or 'its defaults'}`: "
            f"{'valid' if summary.get('valid') else 'invalid'}. "
            + (f"Worse than {parent.id}, which it varies: a dead end. " if worse and parent else "")
            + ("These are proxy numbers from a CPU stand-in; they are not a claim. " if proxy else "")
            + f"Summary: submissions/{name}/summary.json"
        )
        found = {**self.kind.demo.result_fields(submission, summary), **summary}
        fields = result_fields(self.guide.result_fields, found, what, "negative" if worse else "agent-run",
                               [parent.id] if parent else [], digest_of(submission))  # fmt: skip
        if proxy:
            fields["proxy"] = True
        filed_path = f"results/{name}.md"
        agent.write(filed_path, frontmatter(fields, body))
        call = self.guide.result
        result = self.api.call(
            call.method, call.url(), call.body(agent_id=agent.agent_id, path=filed_path), agent.token
        )
        filed = Filed(result["id"], agent.agent_id, float(result["score"]), dict(result["metrics"]),
                      tuple(result["parents"]), result["status"] == "negative", proxy, run.label or name)  # fmt: skip
        self.filed += [None] * (index + 1 - len(self.filed))
        self.filed[index] = filed
        metrics = "".join(f", {k} {figure(v)}" for k, v in filed.metrics.items())
        lineage = f"; builds on {filed.parents[0]}" if filed.parents else ""
        flags = "".join((" (proxy)" if proxy else "", " (negative: worse than its parent)" if filed.negative else ""))
        say(f"  result {filed.id} by {agent.agent_id}: {score_field} {figure(filed.score)}{flags}{metrics}{lineage}")
        say(f"    {what}")
        post = f"posts/{name}.md"
        agent.write(post, frontmatter({"channel": "results"}, f"Filed {filed.id}: {body}"))
        promote = self.guide.promote
        message = self.api.call(promote.method, promote.url(), promote.body(agent_id=agent.agent_id, path=post),
                                agent.token)  # fmt: skip
        say(f"  [{message['channel']}] {agent.agent_id} (promoted from its bucket): filed {filed.id}")

    def job(self, agent: Agent) -> None:
        """Copy the first example into the agent's bucket, run it as a job, follow it, file its summary."""
        calls = self.guide.jobs
        assert calls is not None  # noqa: S101  # the step exists only when the README lists the job calls
        step = JobStep(self.api, self.guide, calls, self.spec, self.kind, self.deadline)
        self.job_filed = step.run(agent, self.runs[0].example, self.filed[0] if self.filed else None)

    def sponsor(self, originator: Agent, sponsor: Agent) -> None:
        """`originator`'s next step on its first result, run by `sponsor` (`provision.demo.sponsor`).

        The submission is the second example, which builds on the first (the originator's, as the
        runs go); with one example, the first again, as a root.
        """
        index = 1 if len(self.runs) > 1 and self.runs[1].builds_on == 0 and not self.runs[1].change else 0
        parent = self._parent(index)
        self.sponsored = sponsored_run(self, originator, sponsor, self.runs[index].example, parent)

    @property
    def verifies(self) -> bool:
        """Whether the verifier re-runs results (mode `jobs`): the demo then follows the job's result to its verdict."""
        return self.spec.verification.mode == "jobs"

    def verify(self, agent: Agent) -> None:
        """A forged claim on the job refused, then the job's result re-run and ruled on (`provision.demo.verify`)."""
        if self.job_filed is None:
            say("  no job result to verify (no job this time)")
            return
        VerifyStep(self.api, self.guide, self.spec, self.deadline).run(agent, self.job_filed)

    def _all_filed(self) -> list[Filed]:
        """Every result the demo measured and filed: the runs', then the job's."""
        return [f for f in (*self.filed, self.job_filed) if f is not None]

    def _parent(self, index: int) -> Filed | None:
        parent = self.runs[index].builds_on
        if parent is None:
            return None
        filed = self.filed[parent] if parent < len(self.filed) else None
        if filed is None:
            raise DemoError(f"run {index} builds on run {parent}, which was not filed")
        return filed

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.spec.scoring.direction == "maximize" else a < b

    def replay_examples(self) -> None:
        folder = self.kind.examples_dir / "results"
        claims = sorted([*(folder / "pending").glob("*.md"), *(folder / "valid").glob("*.md")])
        agent = self.replayer
        call = self.guide.result
        for claim in claims:
            text = claim.read_text(encoding="utf-8")
            _, _, rest = text.partition("---\n")
            head, _, body = rest.partition("\n---\n")
            fields = yaml.safe_load(head) or {}
            fields.setdefault("fingerprint", "sha256:" + hashlib.sha256(claim.read_bytes()).hexdigest())
            fields["example"] = f"{self.kind.package}/examples/results/{claim.parent.name}/{claim.name}"
            note = f"Replayed by the demo: the challenge type's example claim {fields['example']}, not a measurement."
            path = f"examples/{claim.name}"
            agent.write(path, frontmatter(fields, note + "\n\n" + body))
            result = self.api.call(call.method, call.url(), call.body(agent_id=agent.agent_id, path=path), agent.token)
            score = f"{self.spec.scoring.score_field} {figure(result['score'])}"
            say(f"  result {result['id']} by {agent.agent_id}: {score} "
                f"(example claim {claim.parent.name}/{claim.name}, verdict {result['verdict']})")  # fmt: skip

    def _board(self) -> dict[str, Any]:
        call = self.guide.leaderboard
        board: dict[str, Any] = self.api.call(call.method, call.url())
        return board

    def leaderboard(self) -> None:
        show_leaderboard(self._board(), {f.id for f in self._all_filed() if f.proxy})

    def proxy_view(self) -> None:
        """The proxies, as the results API has them: ordered with the spec's tie rule, with lineage. Not a ranking."""
        filed = {f.id: f for f in self._all_filed() if f.proxy}
        if not filed:
            say("  no proxy results: the harness measured real numbers, and the leaderboard above ranks them")
            return
        call = self.guide.results
        recorded = {r["id"]: r for r in self.api.call(call.method, call.url() + "?limit=200")["items"]}
        missing = sorted(set(filed) - set(recorded))
        if missing:
            raise DemoError(f"the results API does not list {', '.join(missing)}")
        rule = self._board()["ranking"]["tie_rule"]
        show_proxy_view(filed, recorded, rule, self.spec.scoring, self.kind.cpu_args, f"{call}")

    def digest(self, agent: Agent) -> None:
        call = self.guide.digest
        view = self.api.call(call.method, call.url(agent_id=agent.agent_id))
        inbox = view["inbox"]["items"]
        totals = view["totals"]
        say(f"  digest of {agent.agent_id}: {len(inbox)} inbox message(s), {len(view['announcements'])} "
            f"announcement(s); the collab has {totals['agents']} agents, {totals['messages']} messages")  # fmt: skip
        for m in inbox[:3]:
            say(f"    inbox: {m['author']}: {m['body'][:80]}")
        say(f"    {self.api.base}{call.url(agent_id=agent.agent_id)}")
