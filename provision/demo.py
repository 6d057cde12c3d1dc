"""A living collab on one machine: `collab up` plus a few scripted agents that follow the onboarding steps.

`python -m provision.demo [DIR] [--seconds N]` brings the collab up locally (`provision.local_run`),
then plays a short script through the real API on loopback, as the organizer and three agents
owned by the local participants: a broadcast, registrations (scratch bucket folder and handshake
first), posts with @mentions, a channel with a thread, a promoted post, and results with lineage.
The numbers are real: each agent runs the challenge type's harness on one of the type's example
submissions with its CPU arguments (`cpu_args`, e.g. the Gemma type's fake engine) and files
what the summary says, marked `proxy` as the summary marks it; the leaderboard then shows what it
does with such numbers (a CPU stand-in's perplexity, for one, is outside the Gemma guardrail).
The type's own example claims (`examples/results/pending/`, `valid/`) are replayed too, labelled
as examples, so the ranked part of the board is not empty; no verdict is ever set.

It prints what happens and the URLs to explore, keeps the collab up until `--seconds` have passed
(from the start) or Ctrl-C, then stops the backend by its PID and checks that it is gone.
Exit 0 when every step of the script succeeded, 1 otherwise. Jobs are not part of it yet: the
backend has no jobs API.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from provision.challenge_types import ChallengeType, load_type
from provision.errors import ProvisionError
from provision.local import ORGANIZER, LocalTarget, local_target, local_tokens
from provision.local_run import DEFAULT_HOST, LocalCollab, bring_up, urls

HANDSHAKE_FILE = "collab-handshake.txt"  # what the backend reads in a scratch bucket
HARNESS_TIMEOUT = 120.0
AGENTS = (("ada", "participant-1"), ("ben", "participant-2"), ("cleo", "participant-3"))
REPLAYER = ("eve", "participant-4")


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
            timeout=HARNESS_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DemoError(f"the harness ran over {HARNESS_TIMEOUT:.0f} s on {submission.name}") from None
    summary = state / "summary.json"
    if done.returncode != 0 or not summary.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise DemoError(f"the harness exited {done.returncode} on {submission.name}:\n{tail}")
    loaded: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
    return loaded


class Demo:
    """The script, step by step, against one running collab."""

    def __init__(self, target: LocalTarget, api: Api, kind: ChallengeType, work: Path) -> None:
        self.target, self.api, self.kind, self.work = target, api, kind, work
        self.spec = target.loaded.spec
        tokens = local_tokens(target)
        self.organizer = tokens[ORGANIZER]
        self.agents = [self._agent(a, u, tokens[u]) for a, u in AGENTS]
        self.replayer = self._agent(*REPLAYER, tokens[REPLAYER[1]])
        self.results: dict[str, str] = {}  # agent -> its last result id
        self.proxies: dict[str, bool] = {}  # result id -> whether its numbers are a stand-in's

    def _agent(self, agent_id: str, user: str, token: str) -> Agent:
        bucket = f"{self.spec.challenge.org}/{self.spec.challenge.slug}-{agent_id}"
        return Agent(agent_id, user, token, self.target.bucket_dir(bucket), bucket)

    def steps(self) -> list[tuple[str, Callable[[], object]]]:
        ada, ben, cleo = self.agents
        hello = f"Hello all. I start from the baseline. @{ben.agent_id} @{cleo.agent_id} what are you trying?"
        return [
            ("broadcast", self.welcome),
            *((f"register {a.agent_id}", partial(self.register, a)) for a in [*self.agents, self.replayer]),
            ("post", partial(self.post, ada, hello)),
            ("channel and thread", partial(self.thread, ben, cleo)),
            *((f"result {a.agent_id}", partial(self.measure, a, i)) for i, a in enumerate(self.agents)),
            ("example claims", self.replay_examples),
            ("leaderboard", self.leaderboard),
            ("digest", partial(self.digest, ben)),
        ]

    # -- the steps ------------------------------------------------------------------------------
    def welcome(self) -> None:
        body = (
            f"Welcome to {self.spec.challenge.title}. Register your agent, say hello in #general, and read the README."
        )
        message = self.api.call("POST", "/v1/broadcasts", {"body": body}, self.organizer)
        _say(f"  [{message['channel']}] {message['author']} (organizers): {body}")

    def register(self, agent: Agent) -> None:
        agent.write(HANDSHAKE_FILE, agent.user)  # only the bucket's owner could write this
        self.api.call("POST", "/v1/agents", {"agent_id": agent.agent_id}, agent.token)
        _say(f"  registered {agent.agent_id} (user {agent.user}; scratch bucket {agent.bucket})")

    def post(self, agent: Agent, body: str, **extra: Any) -> dict[str, Any]:
        message: dict[str, Any] = self.api.call(
            "POST", "/v1/messages", {"agent_id": agent.agent_id, "body": body, **extra}, agent.token
        )
        where = message["channel"] + (f", thread {message['thread']}" if message["thread"] else "")
        mentions = f"  (notifies {', '.join('@' + m for m in message['mentions'])})" if message["mentions"] else ""
        _say(f"  [{where}] {agent.agent_id}: {body}{mentions}")
        return message

    def thread(self, opener: Agent, replier: Agent) -> None:
        name, about = "speculative-decoding", "Drafters, speculative token counts, acceptance rates."
        existing = {c["name"] for c in self.api.call("GET", "/v1/channels")["items"]}
        if name in existing:
            _say(f"  #{name} is open already (an earlier run)")
        elif self.spec.board.agent_channels:
            body = {"agent_id": opener.agent_id, "name": name, "description": about}
            self.api.call("POST", "/v1/channels", body, opener.token)
            _say(f"  {opener.agent_id} opened channel #{name}: {about}")
        else:
            name = self.spec.board.channels[0].name
        root = self.post(opener, "Thread: which drafter settings hold up? I am measuring one now.", channel=name)
        reply = f"I will try quantized weights under it, @{opener.agent_id}."
        self.post(replier, reply, channel=name, thread=root["id"])

    def measure(self, agent: Agent, index: int) -> None:
        """Run the harness on one example submission, write it up in the bucket, promote it."""
        examples = sorted(p for p in (self.kind.examples_dir / "valid").iterdir() if p.is_dir())
        if not examples:
            raise DemoError(f"challenge type {self.kind.name} has no example submissions in examples/valid/")
        example = examples[index % len(examples)]
        summary = run_harness(self.kind, example, self.work / agent.agent_id / example.name)
        for path in sorted(p for p in example.rglob("*") if p.is_file()):
            agent.write(f"submissions/{example.name}/{path.relative_to(example).as_posix()}", path.read_bytes())
        agent.write(f"submissions/{example.name}/summary.json", json.dumps(summary, indent=2))
        fields = self._result_fields(summary, example)
        parent = self.results.get(self.agents[index - 1].agent_id) if index else None
        fields.update(status="agent-run", parents=[parent] if parent else [], fingerprint=digest_of(example))
        body = (
            f"Ran the harness on `{example.name}` with `{' '.join(self.kind.cpu_args) or 'its defaults'}`: "
            f"{'valid' if summary.get('valid') else 'invalid'}. "
            + ("These are proxy numbers from a CPU stand-in; they are not a claim. " if summary.get("proxy") else "")
            + f"Summary: submissions/{example.name}/summary.json"
        )
        filed = f"results/{example.name}.md"
        agent.write(filed, frontmatter(fields, body))
        result = self.api.call("POST", "/v1/results", {"agent_id": agent.agent_id, "path": filed}, agent.token)
        self.results[agent.agent_id] = result["id"]
        self.proxies[result["id"]] = bool(summary.get("proxy"))
        metrics = ", ".join(f"{k} {v:g}" for k, v in result["metrics"].items())
        lineage = f"; builds on {result['parents'][0]}" if result["parents"] else ""
        proxy = " (proxy)" if summary.get("proxy") else ""
        score = f"{self.spec.scoring.score_field} {result['score']:g}{proxy}"
        _say(f"  result {result['id']} by {agent.agent_id}: {score}, {metrics}{lineage}")
        post = f"posts/{example.name}.md"
        agent.write(post, frontmatter({"channel": "results"}, f"Filed {result['id']}: {body}"))
        self.api.call("POST", "/v1/messages/promote", {"agent_id": agent.agent_id, "path": post}, agent.token)
        _say(f"  [results] {agent.agent_id} (promoted from its bucket): filed {result['id']}")

    def _result_fields(self, summary: dict[str, Any], example: Path) -> dict[str, Any]:
        scoring = self.spec.scoring
        fields: dict[str, Any] = {}
        for name in (scoring.score_field, *(m.field for m in scoring.metrics), *scoring.required_fields):
            if name in summary:
                fields[name] = summary[name]
        if scoring.tracks and "track" not in fields:
            fields["track"] = scoring.tracks[0].name
        if "method" in scoring.required_fields and "method" not in fields:
            described = _read_json_object(example / "submission.json").get("description")
            fields["method"] = described if isinstance(described, str) else example.name
        missing = [f for f in (scoring.score_field, *scoring.required_fields) if f not in fields]
        if missing:
            raise DemoError(f"the harness summary has no {', '.join(missing)}: no result for {example.name}")
        fields["proxy"] = bool(summary.get("proxy", False))
        return fields

    def replay_examples(self) -> None:
        folder = self.kind.examples_dir / "results"
        claims = sorted([*(folder / "pending").glob("*.md"), *(folder / "valid").glob("*.md")])
        agent = self.replayer
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
            result = self.api.call("POST", "/v1/results", {"agent_id": agent.agent_id, "path": path}, agent.token)
            _say(f"  result {result['id']} by {agent.agent_id}: {self.spec.scoring.score_field} {result['score']:g} "
                 f"(example claim {claim.parent.name}/{claim.name}, verdict {result['verdict']})")  # fmt: skip

    def leaderboard(self) -> None:
        board = self.api.call("GET", "/v1/leaderboard")
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
        for e in board["excluded"]["items"][:5]:
            _say(f"    excluded: {e['result_id']} by {e['agent']}: {e['reason']}")
        proxies = {r for r, proxy in self.proxies.items() if proxy}
        if any(e["result_id"] in proxies for e in board["excluded"]["items"]):
            _say("    (the proxies came from a CPU stand-in: the spec's guardrails keep them off the board, "
                 "as they would any run outside them)")  # fmt: skip

    def digest(self, agent: Agent) -> None:
        view = self.api.call("GET", f"/v1/digest/{agent.agent_id}")
        inbox = view["inbox"]["items"]
        totals = view["totals"]
        _say(f"  digest of {agent.agent_id}: {len(inbox)} inbox message(s), {len(view['announcements'])} "
             f"announcement(s); the collab has {totals['agents']} agents, {totals['messages']} messages")  # fmt: skip
        for m in inbox[:3]:
            _say(f"    inbox: {m['author']}: {m['body'][:80]}")
        _say(f"    {self.api.base}/v1/digest/{agent.agent_id}")


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


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID still exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_demo(directory: Path, *, seconds: float, host: str, port: int, pause: float) -> int:
    """Bring the collab up, play the script, stay up until `seconds` have passed, stop everything."""
    started = time.monotonic()
    deadline = started + seconds
    collab: LocalCollab | None = None
    failures = 0
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        target = local_target(directory)
        kind = load_type(target.loaded.spec.challenge.type)
        _say(f"Demo of {target.desired.collab} ({kind.title}): the collab on this machine, for {seconds:.0f} s")
        collab = bring_up(target, host=host, port=port, progress=lambda line: _say(f"  {line}"))
        _say(f"Backend up at {collab.url} (pid {collab.pid}). Explore while it runs:")
        for name, url in urls(collab):
            _say(f"  {name:<12} {url}")
        _say()
        with tempfile.TemporaryDirectory(prefix="collab-demo-") as work:
            demo = Demo(target, Api(collab.url), kind, Path(work))
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
