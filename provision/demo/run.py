"""A living collab on one machine: `collab up` plus a few scripted agents that follow the onboarding README.

`python -m provision.demo [DIR] [--seconds N]` brings the collab up locally (`provision.local.processes`),
then plays a short script through the real API on loopback, as the organizer and four agents
owned by the local participants. The agents follow the README seeded into the local central
bucket: its scratch bucket name, handshake file, the request of each step and the fields of a
result come from the text (`provision.demo.guide`), so a README that lacks a step fails the demo,
naming it. The script: a broadcast, registrations (scratch bucket folder and handshake first),
posts with @mentions, a channel with a thread, a promoted post, results with lineage, and, when
the spec has jobs on, a benchmark job.

The numbers are real: each agent runs the challenge type's harness with its CPU arguments
(`cpu_args`, e.g. the Gemma type's fake engine) on one of the type's example submissions, or on
a variant of one (a setting added, written into the agent's bucket), and files what the summary
says; each result builds on the one it varies, and a variant that does worse than its parent is
filed as a `negative` result. Numbers a summary marks `proxy` (a CPU stand-in's) never rank: the
leaderboard keeps them off (the Gemma spec's perplexity guardrail does), and the demo shows them
in a proxy view of its own, labelled as such, with the spec's tie rule and the lineage. The type's
own example claims (`examples/results/pending/`, `valid/`) are replayed too, labelled as examples,
so the ranked part of the board is not empty; no verdict is ever set.

The job (when `jobs.enabled`): one agent copies the first example submission into `jobs/<name>/`
of its scratch bucket and launches it with `POST /v1/jobs`, the requests taken from the README's
API reference; it polls `GET /v1/jobs/{id}` until the job ends, prints its status, charge and
summary figures, the tail of its log and the agent's quota (`GET /v1/jobs?agent=`), and files
the summary as a result that builds on the local run of the same submission. The backend
`collab up` starts runs jobs as local subprocesses with the type's CPU arguments, on the harness
and data seeded into the central bucket, so the figures are a stand-in's: filed as `proxy`, never
ranked. The demo's backend looks at running jobs every second (`COLLAB_JOBS_POLL_S`, unless set).

It prints what happens and the URLs to explore, keeps the collab up until `--seconds` have passed
(from the start) or Ctrl-C, then stops the backend by its PID (the backend stops and refunds any
job still running) and checks that it is gone and that no job process is left in the launcher's
folders (one would be killed by its PID and counted as a failure). Exit 0 when every step of the
script succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from provision.challenge_types import ChallengeType, load_type
from provision.demo.guide import Guide, GuideError, read_guide
from provision.errors import ProvisionError
from provision.local.processes import DEFAULT_HOST, LocalCollab, backend_env, bring_up, pid_alive, urls, without_tokens
from provision.local.target import ORGANIZER, LocalTarget, local_target, local_tokens
from provision.plan.seed import README_PATH

HARNESS_TIMEOUT = 120.0
JOB_WAIT = 120.0  # the longest the demo waits for its job to end (its own deadline may come first)
JOB_POLL = 0.25  # seconds between two looks at the job
JOB_LOG_LINES = 5
JOB_FOLDER = "jobs"  # the job's submission goes to jobs/<example>/ of the agent's bucket
# The demo's backend looks at running jobs every second (unless COLLAB_JOBS_POLL_S is set), so
# the job's end shows within a second of the harness's exit rather than the default five.
MONITOR_POLL = ("COLLAB_JOBS_POLL_S", "1")
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


# Variants of a type's example submissions, by type: a setting added on top of an example. The
# Gemma fake engine's clock reads them (provision's demo only writes submission files): async
# scheduling is a lossless ~1% win, inside the noise margin (a tie with its parent); eager mode
# gives up CUDA graphs and loses (a dead end, filed as negative).
VARIANTS: dict[str, tuple[Run, ...]] = {
    "gemma": (
        Run(0, "int4_qat_mtp", {"engine_args": {"async_scheduling": True}},
            "int4 QAT weights, MTP drafter with 7 tokens, plus async scheduling", "int4_qat_mtp + async scheduling",
            builds_on=2),
        Run(2, "int4_qat_mtp", {"engine_args": {"enforce_eager": True}},
            "int4 QAT weights, MTP drafter with 7 tokens, in eager mode (no CUDA graphs)", "int4_qat_mtp + eager mode",
            builds_on=2),
    ),
}  # fmt: skip


class DemoError(ProvisionError):
    """A step of the script failed (the API refused, or the harness did not produce a summary)."""


def _say(line: str = "") -> None:
    print(line, flush=True)


class Api:
    """JSON over HTTP to the local backend (loopback only), one user's token per call."""

    def __init__(self, base: str) -> None:
        if not base.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
            raise DemoError(f"the demo talks to a loopback backend only, not {base}")
        self.base = base

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)  # noqa: S310  # loopback
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # loopback URL checked above
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                detail = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                detail = f"HTTP {exc.code}"
            raise DemoError(f"{method} {path} -> {detail}") from None


@dataclass
class Agent:
    agent_id: str
    user: str
    token: str
    bucket_dir: Path
    bucket: str

    def write(self, path: str, data: bytes | str) -> None:
        """Write into the agent's own scratch bucket (local mode: a folder of the folder hub)."""
        target = self.bucket_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)


@dataclass(frozen=True)
class Filed:
    """A result the demo filed, as the API recorded it."""

    id: str
    agent: str
    score: float
    metrics: dict[str, float]
    parents: tuple[str, ...]
    negative: bool
    proxy: bool
    label: str


def frontmatter(fields: dict[str, Any], body: str) -> str:
    return "---\n" + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True) + "---\n\n" + body.strip() + "\n"


def digest_of(folder: Path) -> str:
    """sha256 over a submission folder's files (names and contents), the result's fingerprint."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()


def run_harness(kind: ChallengeType, submission: Path, state: Path) -> dict[str, Any]:
    """Run the type's harness on one submission with its CPU arguments; return summary.json."""
    command = [sys.executable, str(kind.entrypoint), "--submission-dir", str(submission), "--state-dir", str(state)]
    try:
        done = subprocess.run(
            [*command, *kind.cpu_args], cwd=kind.harness_dir, capture_output=True, text=True,
            timeout=HARNESS_TIMEOUT, check=False, env=without_tokens(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DemoError(f"the harness ran over {HARNESS_TIMEOUT:.0f} s on {submission.name}") from None
    summary = state / "summary.json"
    if done.returncode != 0 or not summary.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise DemoError(f"the harness exited {done.returncode} on {submission.name}:\n{tail}")
    loaded: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
    return loaded


def merge(into: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`into` with `change` merged in, nested mappings key by key."""
    out = copy.deepcopy(into)
    for key, value in change.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def tie_margin(rule: dict[str, Any], a: float, b: float) -> float:
    """The leaderboard's tie margin (`ranking.tie_rule` of GET /v1/leaderboard) for two scores."""
    if rule.get("kind", "none") == "none":
        return 0.0
    base = max(float(rule["min_margin"]), float(rule["z"]) * float(rule["sigma"]) * math.sqrt(2))
    return base * max(abs(a), abs(b)) if rule["kind"] == "relative" else base


def read_readme(target: LocalTarget) -> str:
    """The onboarding README the local central bucket was seeded with (what agents read first)."""
    path = target.bucket_dir(target.loaded.spec.storage.central_bucket) / README_PATH
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GuideError(f"the central bucket has no readable {README_PATH} ({exc.strerror})") from None


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
        return runs + [v for v in VARIANTS.get(self.kind.name, ()) if v.example in examples]

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
            ("example claims", self.replay_examples),
            ("leaderboard", self.leaderboard),
            ("proxy view", self.proxy_view),
            ("digest", partial(self.digest, ben)),
        ]

    # -- the steps ------------------------------------------------------------------------------
    def welcome(self) -> None:
        body = (
            f"Welcome to {self.spec.challenge.title}. Register your agent, say hello in #general, and read the README."
        )
        call = self.guide.broadcast
        message = self.api.call(call.method, call.url(), call.body(body=body), self.organizer)
        _say(f"  [{message['channel']}] {message['author']} (organizers): {body}")

    def register(self, agent: Agent) -> None:
        agent.write(self.guide.handshake_file, agent.user)  # only the bucket's owner could write this
        call = self.guide.register
        self.api.call(call.method, call.url(), call.body(agent_id=agent.agent_id), agent.token)
        _say(f"  registered {agent.agent_id} (user {agent.user}; scratch bucket {agent.bucket})")

    def post(self, agent: Agent, body: str, **extra: Any) -> dict[str, Any]:
        call = self.guide.post
        message: dict[str, Any] = self.api.call(
            call.method, call.url(), call.body(agent_id=agent.agent_id, body=body, **extra), agent.token
        )
        where = message["channel"] + (f", thread {message['thread']}" if message["thread"] else "")
        mentions = f"  (notifies {', '.join('@' + m for m in message['mentions'])})" if message["mentions"] else ""
        _say(f"  [{where}] {agent.agent_id}: {body}{mentions}")
        return message

    def thread(self, opener: Agent, replier: Agent) -> None:
        name, about = "speculative-decoding", "Drafters, speculative token counts, acceptance rates."
        listed = self.guide.channels
        existing = {c["name"] for c in self.api.call(listed.method, listed.url())["items"]}
        if name in existing:
            _say(f"  #{name} is open already (an earlier run)")
        elif self.spec.board.agent_channels:
            call = self.guide.open_channel
            body = call.body(agent_id=opener.agent_id, name=name, description=about)
            self.api.call(call.method, call.url(), body, opener.token)
            _say(f"  {opener.agent_id} opened channel #{name}: {about}")
        else:
            name = self.spec.board.channels[0].name
        root = self.post(opener, "Thread: which drafter settings hold up? I am measuring one now.", channel=name)
        reply = f"I will try quantized weights under it, @{opener.agent_id}."
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
        config = _read_json_object(submission / "submission.json")
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
        fields = self._frontmatter(summary, what, "negative" if worse else "agent-run",
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
        metrics = ", ".join(f"{k} {v:g}" for k, v in filed.metrics.items())
        lineage = f"; builds on {filed.parents[0]}" if filed.parents else ""
        flags = "".join((" (proxy)" if proxy else "", " (negative: worse than its parent)" if filed.negative else ""))
        _say(f"  result {filed.id} by {agent.agent_id}: {score_field} {filed.score:g}{flags}, {metrics}{lineage}")
        _say(f"    {what}")
        post = f"posts/{name}.md"
        agent.write(post, frontmatter({"channel": "results"}, f"Filed {filed.id}: {body}"))
        promote = self.guide.promote
        message = self.api.call(promote.method, promote.url(), promote.body(agent_id=agent.agent_id, path=post),
                                agent.token)  # fmt: skip
        _say(f"  [{message['channel']}] {agent.agent_id} (promoted from its bucket): filed {filed.id}")

    def job(self, agent: Agent) -> None:
        """Copy the first example into the agent's bucket, run it as a job, follow it, file its summary.

        The requests are the README's (`POST /v1/jobs`, `GET /v1/jobs/{id}`, its logs, the agent's
        jobs and quota). Locally the backend runs the harness as a subprocess with the type's CPU
        arguments, so the figures are a stand-in's: filed as proxy, they never rank.
        """
        calls = self.guide.jobs
        assert calls is not None  # noqa: S101  # the step exists only when the README lists the job calls
        example = self.runs[0].example
        source = self.kind.examples_dir / "valid" / example
        folder = f"{JOB_FOLDER}/{example}"
        quota = self._job_quota(agent)
        if quota is not None and quota["used"] >= quota["limit"]:
            _say(f"  {agent.agent_id} has used its {quota['limit']} job(s) of the last 24 h (earlier runs of the "
                 "demo on this collab): no job this time")  # fmt: skip
            return
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            agent.write(f"{folder}/{path.relative_to(source).as_posix()}", path.read_bytes())
        _say(f"  {agent.agent_id} copied {self.kind.package}/examples/valid/{example}/ to {folder}/ of {agent.bucket}")
        launch = calls.launch
        body = launch.body(agent_id=agent.agent_id, submission=folder, track=self._track(launch))
        view: dict[str, Any] = self.api.call(launch.method, launch.url(), body, agent.token)
        job_id = str(view["id"])
        _say(f"  {launch.method} {launch.path} {json.dumps(body)} -> {job_id}: {view['status']}")
        ended = self._follow(job_id, view)
        if ended is None:
            return
        summary = ended.get("summary") or {}
        charge = f"charged to {agent.agent_id}'s quota" if ended["charged"] else "not charged (refunded)"
        _say(f"  {job_id} ended {ended['status']} (exit {ended['exit_code']}), {charge}: {_shown(ended['reason'])}")
        if summary:
            _say(f"  summary: {self._figures(summary)}")
        logs = self.api.call(calls.logs.method, calls.logs.url(id=job_id) + f"?tail={JOB_LOG_LINES}")
        _say(f"  its log, the last {len(logs['lines'])} line(s) ({calls.logs.method} {calls.logs.url(id=job_id)}):")
        for line in logs["lines"]:
            _say(f"    | {_shown(line)}")
        quota = self._job_quota(agent)
        if quota is not None:
            _say(f"  {agent.agent_id}'s job quota: {quota['used']} of {quota['limit']} used in 24 h")
        if ended["status"] != "succeeded" or not summary.get("valid"):
            reasons = "; ".join(map(str, summary.get("reasons", []))) or ended["reason"]
            raise DemoError(f"the job on {folder}/ ended {ended['status']}, not a valid summary: {_shown(reasons)}")
        self._file_job(agent, job_id, example, source, summary)

    def _follow(self, job_id: str, view: dict[str, Any]) -> dict[str, Any] | None:
        """Poll the job until it ends; None when the demo's time is up first (the backend stops it)."""
        call = self.guide.jobs.status if self.guide.jobs else None
        assert call is not None  # noqa: S101
        started = time.monotonic()
        limit = min(self.deadline, started + JOB_WAIT)
        status = view["status"]
        while status in ("queued", "running"):
            if time.monotonic() >= limit:
                if limit == self.deadline:
                    _say(f"  time is up while {job_id} is {status}: the backend stops it, uncharged, when it stops")
                    return None
                raise DemoError(f"{job_id} did not end within {JOB_WAIT:.0f} s (it is {status})")
            time.sleep(JOB_POLL)
            view = self.api.call(call.method, call.url(id=job_id))
            if view["status"] != status:
                status = view["status"]
                _say(f"  {call.method} {call.url(id=job_id)}: {status} after {time.monotonic() - started:.1f} s")
        return view

    def _job_quota(self, agent: Agent) -> dict[str, int] | None:
        """The agent's charged launches in 24 h and its limit, from the agent's job list."""
        call = self.guide.jobs.listed if self.guide.jobs else None
        if call is None:
            return None
        listed = self.api.call(call.method, call.url() + f"?agent={agent.agent_id}&limit=1")
        quota = (listed.get("quota") or {}).get("agent")
        return {"used": int(quota["used"]), "limit": int(quota["limit"])} if quota else None

    def _track(self, launch: Any) -> str | None:
        """The track the results are filed for (the README's example), when the launch takes one."""
        track = self.guide.result_fields.get("track")
        names = [t.name for t in self.spec.scoring.tracks]
        return track if "track" in launch.optional and isinstance(track, str) and track in names else None

    def _figures(self, summary: dict[str, Any]) -> str:
        scoring = self.spec.scoring
        shown = [f"{f} {summary[f]:g}" for f in (scoring.score_field, *(m.field for m in scoring.metrics))
                 if isinstance(summary.get(f), int | float)]  # fmt: skip
        verdict = "valid" if summary.get("valid") else "invalid"
        proxy = "; proxy (a CPU stand-in's numbers: never ranked)" if summary.get("proxy") else ""
        return ", ".join(shown) + f"; {verdict}{proxy}"

    def _file_job(self, agent: Agent, job_id: str, example: str, source: Path, summary: dict[str, Any]) -> None:
        """File the job's summary as a result that builds on the local run of the same example."""
        parent = self.filed[0] if self.filed else None
        described = _read_json_object(source / "submission.json").get("description")
        what = f"{described if isinstance(described, str) else example}, measured by {job_id}"
        proxy = bool(summary.get("proxy"))
        launch = self.guide.jobs.launch if self.guide.jobs else None
        body = (
            f"Measured by {job_id} ({launch} on `{JOB_FOLDER}/{example}/` of my bucket), run by the collab's "
            "job launcher. "
            + ("These are proxy numbers from a CPU stand-in; they are not a claim. " if proxy else "")
            + f"Summary: GET /v1/jobs/{job_id}"
        )
        fields = self._frontmatter(summary, what, "agent-run", [parent.id] if parent else [], digest_of(source))
        fields["job"] = job_id
        if proxy:
            fields["proxy"] = True
        path = f"results/job-{example}.md"
        agent.write(path, frontmatter(fields, body))
        call = self.guide.result
        result = self.api.call(call.method, call.url(), call.body(agent_id=agent.agent_id, path=path), agent.token)
        self.job_filed = Filed(result["id"], agent.agent_id, float(result["score"]), dict(result["metrics"]),
                               tuple(result["parents"]), False, proxy, f"{example} (job)")  # fmt: skip
        score_field = self.spec.scoring.score_field
        lineage = f"; builds on {parent.id}, the local run of the same submission" if parent else ""
        flag = " (proxy)" if proxy else ""
        _say(f"  result {result['id']} by {agent.agent_id}: {score_field} {result['score']:g}{flag}, "
             f"from {job_id}{lineage}")  # fmt: skip

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

    def _frontmatter(
        self, summary: dict[str, Any], what: str, status: str, parents: list[str], fingerprint: str
    ) -> dict[str, Any]:
        """The result's frontmatter, field by field as the README's example lists them."""
        fields: dict[str, Any] = {}
        for name, example in self.guide.result_fields.items():
            if name == "status":
                fields[name] = status
            elif name == "parents":
                fields[name] = parents
            elif name == "fingerprint":
                fields[name] = fingerprint
            elif summary.get(name) is not None:
                fields[name] = summary[name]
            elif name == "method":
                fields[name] = what
            elif isinstance(example, str) and example and not example.startswith("<"):
                fields[name] = example  # a fixed value, e.g. the track
            else:
                raise DemoError(
                    f"the README asks results for {name!r} ({example}); the harness summary has no such figure"
                )
        return fields

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
            _say(f"  result {result['id']} by {agent.agent_id}: {self.spec.scoring.score_field} {result['score']:g} "
                 f"(example claim {claim.parent.name}/{claim.name}, verdict {result['verdict']})")  # fmt: skip

    def _board(self) -> dict[str, Any]:
        call = self.guide.leaderboard
        board: dict[str, Any] = self.api.call(call.method, call.url())
        return board

    def leaderboard(self) -> None:
        board = self._board()
        ranking = board["ranking"]
        _say(f"  leaderboard ({ranking['label'] or ranking['score_field']}, {ranking['direction']}; "
             f"ties: {ranking['tie_rule']['rule']})")  # fmt: skip
        for b in board["boards"]:
            title = f"track {b['track']}" if b["track"] else "board"
            if not b["standings"]:
                _say(f"    {title}: no ranked result yet")
                continue
            _say(f"    {title}:")
            for s in b["standings"][:5]:
                rank = f"={s['rank']}" if s["tied"] else f" {s['rank']}"
                flag = " (pending verification)" if s["pending"] else f" ({s['verdict']})"
                _say(f"      {rank:>3}  {s['agent']:<6} {s['score']:g}{flag}")
        proxies = {f.id for f in self._all_filed() if f.proxy}
        excluded = board["excluded"]["items"]
        for e in excluded:
            if e["result_id"] not in proxies:
                _say(f"    excluded: {e['result_id']} by {e['agent']}: {e['reason']}")
        kept_off = [e for e in excluded if e["result_id"] in proxies]
        if kept_off:
            reasons = sorted({e["reason"] for e in kept_off})
            _say(f"    excluded: {len(kept_off)} proxy result(s) ({'; '.join(reasons)}): the spec's guardrails keep "
                 "a CPU stand-in's numbers off the board, as they would any run outside them")  # fmt: skip

    def proxy_view(self) -> None:
        """The proxies, as the results API has them: ordered with the spec's tie rule, with lineage. Not a ranking."""
        filed = {f.id: f for f in self._all_filed() if f.proxy}
        if not filed:
            _say("  no proxy results: the harness measured real numbers, and the leaderboard above ranks them")
            return
        call = self.guide.results
        recorded = {r["id"]: r for r in self.api.call(call.method, call.url() + "?limit=200")["items"]}
        missing = sorted(set(filed) - set(recorded))
        if missing:
            raise DemoError(f"the results API does not list {', '.join(missing)}")
        rule = self._board()["ranking"]["tie_rule"]
        scoring = self.spec.scoring
        sign = 1.0 if scoring.direction == "maximize" else -1.0
        ordered = sorted((r for r in filed.values() if not r.negative), key=lambda r: -sign * r.score)
        _say(f"  proxy view: every result of a CPU stand-in ({' '.join(self.kind.cpu_args)}), read from {call}.")
        _say("  Proxies never rank: this is no ranking, only their order under the leaderboard's tie rule, to show")
        _say("  ties and lineage:")
        place, leader = 0, None
        groups: dict[int, list[Filed]] = {}
        rows: list[tuple[int, Filed]] = []
        for position, r in enumerate(ordered, start=1):
            if leader is None or abs(leader.score - r.score) > tie_margin(rule, leader.score, r.score):
                leader, place = r, position
            groups.setdefault(place, []).append(r)
            rows.append((place, r))
        label = f"{scoring.score_field} (proxy)"
        _say(f"      {'#':>3}  {'agent':<6} {label:>12}  {'result':<24} {'builds on':<24} submission")
        for place, r in rows:
            mark = f"={place}" if len(groups[place]) > 1 else f"{place}"
            parents = ", ".join(recorded[r.id]["parents"]) or "-"
            _say(f"      {mark:>3}  {r.agent:<6} {r.score:>12.2f}  {r.id:<24} {parents:<24} {r.label}")
        for r in (r for r in filed.values() if r.negative):
            parents = ", ".join(recorded[r.id]["parents"]) or "-"
            _say(f"      {'-':>3}  {r.agent:<6} {r.score:>12.2f}  {r.id:<24} {parents:<24} {r.label} (negative)")
        for members in (g for g in groups.values() if len(g) > 1):
            best, rest = members[0], members[1:]
            for r in rest:
                gap = abs(best.score - r.score) / abs(best.score) * 100 if best.score else 0.0
                allowed = tie_margin(rule, best.score, r.score) / abs(best.score) * 100 if best.score else 0.0
                _say(f"    tie: {r.agent}'s {r.id} is {gap:.2f}% from {best.agent}'s {best.id}, inside the noise "
                     f"margin ({allowed:.2f}%): the same place, not a rank apart")  # fmt: skip
        _say(f"    lineage: {self._lineage(recorded, filed)}")

    def _lineage(self, recorded: dict[str, Any], filed: dict[str, Filed]) -> str:
        """The longest chain of parents among the filed results, root first."""

        def chain(result_id: str) -> list[str]:
            parents = recorded.get(result_id, {}).get("parents", [])
            return [*chain(parents[0]), result_id] if parents and parents[0] in recorded else [result_id]

        longest = max((chain(r) for r in filed), key=len)
        return " -> ".join(f"{r} ({filed[r].agent})" if r in filed else r for r in longest)

    def digest(self, agent: Agent) -> None:
        call = self.guide.digest
        view = self.api.call(call.method, call.url(agent_id=agent.agent_id))
        inbox = view["inbox"]["items"]
        totals = view["totals"]
        _say(f"  digest of {agent.agent_id}: {len(inbox)} inbox message(s), {len(view['announcements'])} "
             f"announcement(s); the collab has {totals['agents']} agents, {totals['messages']} messages")  # fmt: skip
        for m in inbox[:3]:
            _say(f"    inbox: {m['author']}: {m['body'][:80]}")
        _say(f"    {self.api.base}{call.url(agent_id=agent.agent_id)}")


def _shown(text: str) -> str:
    """Text from a job (its log, its reasons) made safe for a terminal: control characters escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable the backend inherits, unless it is set already; restore it after."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


def job_processes(jobs_dir: Path) -> list[int]:
    """PIDs of harness runs of the local job launcher (none once the backend stopped them).

    A harness run works in a job's folder and runs a file copied there; a shell that merely sits
    in that folder does not match.
    """
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if not Path(os.readlink(entry / "cwd")).is_relative_to(jobs_dir):
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if any(Path(os.fsdecode(arg)).is_relative_to(jobs_dir) for arg in argv[1:] if arg.startswith(b"/")):
                found.append(int(entry.name))
    return sorted(found)


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class _Stop(Exception):
    """SIGINT or SIGTERM: end the demo early."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run_demo(directory: Path, *, seconds: float, host: str, port: int, pause: float) -> int:
    """Bring the collab up, play the script, stay up until `seconds` have passed, stop everything."""
    started = time.monotonic()
    deadline = started + seconds
    collab: LocalCollab | None = None
    jobs_dir: Path | None = None
    failures = 0
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        target = local_target(directory)
        kind = load_type(target.loaded.spec.challenge.type)
        jobs_dir = Path(backend_env(target)["COLLAB_JOBS_DIR"])  # where the backend's local jobs run
        _say(f"Demo of {target.desired.collab} ({kind.title}): the collab on this machine, for {seconds:.0f} s")
        with _environment(*MONITOR_POLL):
            collab = bring_up(target, host=host, port=port, progress=lambda line: _say(f"  {line}"))
        _say(f"Backend up at {collab.url} (pid {collab.pid}). Explore while it runs:")
        for name, url in urls(collab):
            _say(f"  {name:<12} {url}")
        _say()
        scoring = target.loaded.spec.scoring
        guide = read_guide(
            read_readme(target),
            required_result_fields=(scoring.score_field, *scoring.required_fields),
            jobs=target.loaded.spec.jobs.enabled,
        )
        central = target.loaded.spec.storage.central_bucket
        _say(f"The agents follow the onboarding README ({README_PATH} of the central bucket {central}):")
        for line in guide.summary():
            _say(f"  {line}")
        _say()
        with tempfile.TemporaryDirectory(prefix="collab-demo-") as work:
            demo = Demo(target, Api(collab.url), kind, guide, Path(work))
            demo.deadline = deadline
            for name, step in demo.steps():
                if time.monotonic() >= deadline:
                    _say(f"Time is up before the step '{name}'.")
                    break
                _say(f"{name}:")
                try:
                    step()
                except DemoError as exc:
                    failures += 1
                    _say(f"  FAILED: {exc}")
                time.sleep(pause)
        left = deadline - time.monotonic()
        if left > 0:
            _say(f"\nThe script is done; the collab stays up for {left:.0f} s more (Ctrl-C stops it).")
            while time.monotonic() < deadline:
                if not collab.running():
                    _say(f"The backend stopped by itself; its log ends with:\n{collab.tail()}")
                    failures += 1
                    break
                time.sleep(0.2)
    except _Stop:
        _say("\nInterrupted.")
    except GuideError as exc:
        _say(f"demo: the onboarding README does not guide the agents: {exc}")
        failures += 1
    except ProvisionError as exc:
        _say(f"demo: {exc}")
        failures += 1
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if collab is not None and collab.pid is not None:
            pid = collab.pid
            code = collab.stop()
            gone = not pid_alive(pid)
            left_behind = "no process left." if gone else "IT IS STILL RUNNING."
            _say(f"Stopped the backend (pid {pid}, exit {code}); {left_behind}")
            failures += 0 if gone else 1
            if jobs_dir is not None and (strays := job_processes(jobs_dir)):
                for stray in strays:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(stray, signal.SIGKILL)
                pids = ", ".join(map(str, strays))
                _say(f"Stopped {len(strays)} job process(es) the backend left running (pid {pids}).")
                failures += 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    outcome = f" with {failures} failed step(s)." if failures else "."
    _say(f"Demo finished in {time.monotonic() - started:.0f} s{outcome}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provision.demo", description="Scripted agents in a local collab.")
    parser.add_argument("dir", nargs="?", type=Path, default=Path("."), help="the collab folder (default: .)")
    parser.add_argument("--seconds", type=float, default=45.0, help="how long the demo runs in all (default: 45)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"the backend's address (default: {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=8000, help="the backend's port (default: 8000)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between two steps (default: 0.5)")
    args = parser.parse_args(argv)
    return run_demo(args.dir, seconds=args.seconds, host=args.host, port=args.port, pause=args.pause)


if __name__ == "__main__":
    sys.exit(main())
