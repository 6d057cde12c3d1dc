"""Helpers of the jobs tests: a spec with jobs on, a scripted launcher, tiny harnesses, a world that runs jobs."""

from __future__ import annotations

import dataclasses
import importlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backend_world import SPEC_YAML, World, make_spec

from collab_backend.jobs.base import Launcher, LauncherError, LaunchRequest, Progress, Runs
from collab_backend.main import create_app
from collab_backend.spec import ChallengeSpec
from collab_backend.storage import Add

JOBS_YAML = (
    SPEC_YAML.replace("registrations: {limit: 3,", "registrations: {limit: 20,").replace(
        "scoring: {score_field: tps}",
        "scoring:\n  score_field: tps\n  metrics: [{field: ppl, direction: minimize, guardrail: {max: 2.42}}]\n"
        "  tracks: [{name: lossless}, {name: lossy}]",
    )
    + "jobs:\n  enabled: true\n  timeout_minutes: 1\n"
    "  quota: {per_agent_per_day: 3, per_user_per_day: 5, overrides: {vip-agent: 6, banned: 0}}\n"
)

# COLLAB_JOBS_ARGS of a Gemma collab under JOBS_YAML: what provisioning derives from the `ppl`
# guardrail with the type's job_args hook (a kit test holds the Gemma type to it).
JOB_ARGS = ("--ppl-cap", "2.42")

SUMMARY: dict[str, Any] = {
    "valid": True,
    "reasons": [],
    "proxy": True,
    "provenance": {"evaluator": "tiny", "evaluator_version": "1.0"},
    "tps": 42.0,
}

# A harness that accepts the optional options, prints its environment's names and values, and
# writes a valid summary (or behaves as the submission's mode.txt says).
TINY_HARNESS = """\
import argparse, json, os, sys, time
from pathlib import Path
parser = argparse.ArgumentParser()
parser.add_argument("--submission-dir", type=Path, required=True)
parser.add_argument("--state-dir", type=Path, required=True)
parser.add_argument("--job-id")
parser.add_argument("--time-budget-s", type=float)
parser.add_argument("--ppl-cap", type=float)
parser.add_argument("--engine", default="real")
args = parser.parse_args()
print("argv", json.dumps(sys.argv[1:]))
print("env", json.dumps(dict(os.environ)))
mode = (args.submission_dir / "mode.txt").read_text().strip()
if mode == "sleep":
    print("sleeping", flush=True)
    time.sleep(600)
if mode == "infra":
    sys.exit(3)
if mode == "crash":
    raise SystemExit(1)
summary = {"valid": mode == "ok", "reasons": [] if mode == "ok" else ["the mode says so"],
           "proxy": args.engine != "real",
           "provenance": {"evaluator": "tiny", "evaluator_version": "1.0", "job_id": args.job_id}}
(args.state_dir / "summary.json").write_text(json.dumps(summary))
print("done")
"""

# A harness in the tsp style: only the two folders (any other option is a usage error).
PLAIN_HARNESS = """\
import argparse, json
from pathlib import Path
parser = argparse.ArgumentParser()
parser.add_argument("--submission-dir", type=Path, required=True)
parser.add_argument("--state-dir", type=Path, required=True)
args = parser.parse_args()
(args.state_dir / "summary.json").write_text(json.dumps({"valid": True, "reasons": [], "proxy": False,
    "provenance": {"evaluator": "plain", "evaluator_version": "1"}}))
"""


def jobs_spec(text: str = JOBS_YAML) -> ChallengeSpec:
    return make_spec(text)


class ScriptedLauncher:
    """A launcher whose runs do what the test says (the service's logic, without processes)."""

    kind = "scripted"

    def __init__(self, *, stand_in: bool = False) -> None:
        self.stand_in = stand_in
        self.requests: list[LaunchRequest] = []
        self.progress: dict[str, Progress] = {}
        self.lines: dict[str, list[str]] = {}
        self.canceled: list[str] = []
        self.released: list[str] = []
        self.found: dict[str, str] = {}
        self.fail_next: Exception | None = None
        self.poll_error: LauncherError | None = None
        self.closed = False
        self._lock = threading.Lock()

    def launch(self, request: LaunchRequest) -> str:
        with self._lock:
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            self.requests.append(request)
            handle = f"run-{len(self.requests)}"
            self.progress[handle] = Progress("queued", stage="SCHEDULING")
            return handle

    def handle_of(self, job_id: str) -> str:
        return next(f"run-{i + 1}" for i, r in enumerate(self.requests) if r.job_id == job_id)

    def end(self, job_id: str, **fields: Any) -> None:
        self.progress[self.handle_of(job_id)] = Progress("ended", **fields)

    def poll(self, job_id: str, handle: str) -> Progress:
        if self.poll_error is not None:
            raise self.poll_error
        return self.progress.get(handle, Progress("lost", message="unknown", started=False))

    def logs(self, handle: str, tail: int) -> list[str]:
        return self.lines.get(handle, [])[-tail:]

    def cancel(self, handle: str) -> None:
        self.canceled.append(handle)

    def find(self, job_id: str) -> str | None:
        return self.found.get(job_id)

    def release(self, handle: str) -> None:
        self.released.append(handle)

    def close(self) -> list[str]:
        self.closed = True
        return []


def summary_bytes(**change: Any) -> bytes:
    return json.dumps({**SUMMARY, **change}).encode()


def with_launcher(
    world: World,
    launcher: Launcher,
    *,
    poll_interval: float = 3600.0,
    job_args: tuple[str, ...] = (),
    **runs: Any,
) -> World:
    """The world's backend with a launcher (monitor polling every `poll_interval` seconds) and the spec's job args."""
    world.ctx = dataclasses.replace(
        world.ctx, launcher=launcher, runs=Runs(poll_interval=poll_interval, **runs), job_args=job_args
    )
    world.app = create_app(world.ctx)
    return world


def seed_harness(world: World, text: str = TINY_HARNESS, extra: dict[str, bytes] | None = None) -> None:
    files = {"harness/run.py": text.encode(), **{f"harness/{k}": v for k, v in (extra or {}).items()}}
    world.storage.batch(world.spec.storage.central_bucket, [Add(p, d) for p, d in files.items()])


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def bundled_type(name: str) -> object:
    """The bundled challenge type, when this collab carries it (a rendered collab holds its own type only)."""
    importlib.import_module("provision.challenge_types")
    pytest.importorskip(f"challenge_{name}", reason=f"this collab does not carry the {name} type")
    from provision.challenge_types import load_type

    return load_type(name)


def upload_files(folder: Path, prefix: str) -> dict[str, bytes]:
    return {
        prefix + p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def seed_bundled_harness(world: World, kind: Any) -> None:
    """A bundled type's harness in the central bucket, with the sample data its CPU stand-in reads."""
    files = upload_files(kind.harness_dir, "harness/")
    data = kind.package_dir / "data" / "sample"
    if data.is_dir():  # the CPU stand-in reads the bundled sample beside run.py
        files.update(upload_files(data, "harness/data/sample/"))
    world.storage.batch(world.spec.storage.central_bucket, [Add(p, d) for p, d in files.items()])
