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

The verification (mode `jobs`, `provision.demo.verify`): the job's agent files a forged claim on
its job, which the backend refuses (`FIGURE_MISMATCH`), then the demo follows the job's result
until the verifier has re-run it and ruled. A proxy is re-run only in a rehearsal, so the demo's
backend runs with `COLLAB_VERIFY_REHEARSAL=1` (unless set), and the verdict says it is one.

It prints what happens and the URLs to explore (the dashboard's first: `collab up` starts it
beside the backend, on `--port` + 1 unless `--dashboard-port` says otherwise), keeps the collab up
until `--seconds` have passed (from the start) or Ctrl-C, then stops the dashboard and the backend
by their PIDs (the backend stops and refunds any job still running) and checks that they are
gone and that no job process is left in the launcher's folders (one would be killed by its PID
and counted as a failure). Exit 0 when every step of the script succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from provision.challenge_types import load_type
from provision.demo.agents import Api, DemoError, read_readme, say
from provision.demo.guide import GuideError, read_guide
from provision.demo.script import Demo
from provision.demo.verify import REHEARSAL_ENV
from provision.errors import ProvisionError
from provision.local.processes import LocalCollab, backend_env, bring_up, pid_alive, urls
from provision.local.target import DEFAULT_HOST, local_target
from provision.plan.seed import README_PATH
from provision.spec.model import ChallengeSpec

# The demo's backend looks at running jobs every second (unless COLLAB_JOBS_POLL_S is set), so
# the job's end shows within a second of the harness's exit rather than the default five.
MONITOR_POLL = ("COLLAB_JOBS_POLL_S", "1")


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


def _rehearses(spec: ChallengeSpec) -> bool:
    """Whether the demo's backend rehearses verification on the stand-in: mode `jobs`, jobs run locally."""
    return spec.verification.mode == "jobs" and spec.jobs.enabled and os.environ.get("COLLAB_JOBS", "local") == "local"


class _Stop(Exception):
    """SIGINT or SIGTERM: end the demo early."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run_demo(
    directory: Path, *, seconds: float, host: str, port: int, pause: float, dashboard_port: int | None = None
) -> int:
    """Bring the collab up, play the script, stay up until `seconds` have passed, stop everything.

    The dashboard listens on `dashboard_port` (default: `port` + 1).
    """
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
        say(f"Demo of {target.desired.collab} ({kind.title}): the collab on this machine, for {seconds:.0f} s")
        rehearse = _environment(*REHEARSAL_ENV) if _rehearses(target.loaded.spec) else contextlib.nullcontext()
        with _environment(*MONITOR_POLL), rehearse:
            collab = bring_up(
                target, host=host, port=port, dashboard_port=dashboard_port or port + 1,
                progress=lambda line: say(f"  {line}"),
            )  # fmt: skip
        for server in collab.servers:
            say(f"{server.name.capitalize()} up at {server.url} (pid {server.pid}).")
        say("Explore while it runs (sign in to the dashboard with a token of .collab/identities.json):")
        for name, url in urls(collab):
            say(f"  {name:<12} {url}")
        say()
        scoring = target.loaded.spec.scoring
        guide = read_guide(
            read_readme(target),
            required_result_fields=(scoring.score_field, *scoring.required_fields),
            jobs=target.loaded.spec.jobs.enabled,
        )
        central = target.loaded.spec.storage.central_bucket
        say(f"The agents follow the onboarding README ({README_PATH} of the central bucket {central}):")
        for line in guide.summary():
            say(f"  {line}")
        say()
        with tempfile.TemporaryDirectory(prefix="collab-demo-") as work:
            demo = Demo(target, Api(collab.backend.url), kind, guide, Path(work))
            demo.deadline = deadline
            for name, step in demo.steps():
                if time.monotonic() >= deadline:
                    say(f"Time is up before the step '{name}'.")
                    break
                say(f"{name}:")
                try:
                    step()
                except DemoError as exc:
                    failures += 1
                    say(f"  FAILED: {exc}")
                time.sleep(pause)
        left = deadline - time.monotonic()
        if left > 0:
            say(f"\nThe script is done; the collab stays up for {left:.0f} s more (Ctrl-C stops it).")
            while time.monotonic() < deadline:
                if (gone := collab.stopped()) is not None:
                    say(f"The {gone.name} stopped by itself; its log ends with:\n{gone.tail()}")
                    failures += 1
                    break
                time.sleep(0.2)
    except _Stop:
        say("\nInterrupted.")
    except GuideError as exc:
        say(f"demo: the onboarding README does not guide the agents: {exc}")
        failures += 1
    except ProvisionError as exc:
        say(f"demo: {exc}")
        failures += 1
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if collab is not None:
            pids = {server.name: server.pid for server in collab.servers}
            codes = collab.stop()
            for name, code in codes.items():  # the dashboard first, the order they were stopped in
                pid = pids[name]
                ended = pid is not None and not pid_alive(pid)
                left_behind = "no process left." if ended else "IT IS STILL RUNNING."
                say(f"Stopped the {name} (pid {pid}, exit {code}); {left_behind}")
                failures += 0 if ended else 1
            if jobs_dir is not None and (strays := job_processes(jobs_dir)):
                for stray in strays:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(stray, signal.SIGKILL)
                listed = ", ".join(map(str, strays))
                say(f"Stopped {len(strays)} job process(es) the backend left running (pid {listed}).")
                failures += 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    outcome = f" with {failures} failed step(s)." if failures else "."
    say(f"Demo finished in {time.monotonic() - started:.0f} s{outcome}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provision.demo", description="Scripted agents in a local collab.")
    parser.add_argument("dir", nargs="?", type=Path, default=Path("."), help="the collab folder (default: .)")
    parser.add_argument("--seconds", type=float, default=45.0, help="how long the demo runs in all (default: 45)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"the backend's address (default: {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=8000, help="the backend's port (default: 8000)")
    parser.add_argument("--dashboard-port", type=int, default=None, help="the dashboard's port (default: --port + 1)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between two steps (default: 0.5)")
    args = parser.parse_args(argv)
    return run_demo(
        args.dir, seconds=args.seconds, host=args.host, port=args.port, pause=args.pause,
        dashboard_port=args.dashboard_port,
    )  # fmt: skip
