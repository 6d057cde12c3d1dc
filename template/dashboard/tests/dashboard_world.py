"""The dashboard's test world: a real backend and a real dashboard on loopback, and a collab to show.

Both run as uvicorn servers in threads of the test process, on ports the OS picks; the dashboard
reaches the backend over HTTP exactly as on a Space. The backend is the local mode's (buckets as
folders, people in an identity file, jobs as subprocesses running a tiny harness). Everything is
seeded through the backend's API as agents and people would, except what the API would refuse
(hostile channel names), which is written into the record by the backend's own writer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from collab_backend.config import Settings as BackendSettings
from collab_backend.main import build_context
from collab_backend.main import create_app as create_backend
from collab_backend.record.entries import ChannelEntry
from collab_backend.record.state import State
from collab_backend.storage import Add
from collab_backend.storage.local import LocalStorage
from collab_dashboard.config import Settings
from collab_dashboard.main import create_app
from collab_testing.types import any_type
from provision.spec import load_spec

# Any registered type: what these tests check does not depend on it (a collab registers its own only).
CHALLENGE_TYPE = any_type()
SPEC_YAML = (
    "spec_version: 2\n"
    f"challenge: {{org: acme, slug: fast, title: Fast decode, tagline: Decode faster, type: {CHALLENGE_TYPE}}}\n"
    """\
scoring:
  score_field: tps
  label: Decode speed
  unit: tokens/s
  metrics: [{field: ppl, direction: minimize, guardrail: {max: 2.42}}]
  tracks: [{name: lossless}, {name: lossy}]
  noise: {kind: relative, sigma: 0.004, z: 2.5, min_margin: 0.01}
board:
  channels: [{name: general}, {name: results}, {name: kernels, description: Custom kernels}]
  raw_posts: {limit: 1000, window_seconds: 60}
  promotions: {limit: 1000, window_seconds: 60}
  registrations: {limit: 100, window_seconds: 3600}
  mention_fanout_cap: 10
  max_message_bytes: 8000
jobs:
  enabled: true
  timeout_minutes: 1
  quota: {per_agent_per_day: 5, per_user_per_day: 10, overrides: {}}
dashboard:
  invite_link: https://huggingface.co/organizations/acme/share/abcdefgh
"""
)

HARNESS = """\
import argparse, json
from pathlib import Path
parser = argparse.ArgumentParser()
parser.add_argument("--submission-dir", type=Path, required=True)
parser.add_argument("--state-dir", type=Path, required=True)
args, _ = parser.parse_known_args()
print("harness: checking", sorted(p.name for p in args.submission_dir.iterdir()))
print("<script>alert('from a log')</script>")
summary = {"valid": True, "reasons": [], "proxy": True, "tps": 123.4,
           "provenance": {"evaluator": "tiny", "evaluator_version": "1.0"}}
(args.state_dir / "summary.json").write_text(json.dumps(summary))
print("harness: done")
"""

TOKENS = {
    "organizer": ("tok-organizer", {"acme": "admin", "acme-admin": "admin"}),
    "alice": ("tok-alice", {"acme": "contributor"}),
    "bob": ("tok-bob", {"acme": "contributor"}),
    "outsider": ("tok-outsider", {"elsewhere": "admin"}),
}


def spec_document(text: str = SPEC_YAML) -> dict[str, Any]:
    """The fully defaulted spec document, through the real loader."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "challenge.yaml"
        path.write_text(text, encoding="utf-8")
        return dict(load_spec(path).document)


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread; `stop` ends it."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


class Collab:
    """A running local collab (backend and dashboard) and the people and agents in it."""

    def __init__(self, root: Path, spec_text: str = SPEC_YAML, **dashboard: Any) -> None:
        self.root = root
        self.document = spec_document(spec_text)
        self.central = self.document["storage"]["central_bucket"]
        self.storage = LocalStorage(root / "hub")
        self.storage.create_bucket(self.central)
        self.storage.create_bucket(self.document["storage"]["audit_bucket"])
        jobs = self.document["jobs"]
        harness = jobs["harness_prefix"].rstrip("/") + "/" + jobs["entrypoint"]
        self.storage.batch(self.central, [Add(harness, HARNESS.encode())])
        self.identity_file = root / "identities.json"
        self.identity_file.write_text(json.dumps({t: {"user": u, "orgs": o} for u, (t, o) in TOKENS.items()}))
        settings = BackendSettings(
            spec=self.document, storage="local", local_root=root / "hub", identity_file=self.identity_file,
            jobs="local", jobs_dir=root / "jobs", jobs_poll_s=0.2,
        )  # fmt: skip
        self.ctx = build_context(settings)
        self.backend = Served(create_backend(self.ctx))
        options = {"poll_seconds": 2, **dashboard}
        self.settings = Settings(
            spec=self.document, backend_url=self.backend.url, sign_in="local", identity_file=self.identity_file,
            **options,
        )  # fmt: skip
        self.dashboard = Served(create_app(self.settings))
        self.api = httpx.Client(base_url=self.backend.url, timeout=30)
        self.web = httpx.Client(base_url=self.dashboard.url, timeout=30)

    def close(self) -> None:
        self.api.close()
        self.web.close()
        self.dashboard.stop()
        self.backend.stop()

    @property
    def url(self) -> str:
        return self.dashboard.url

    # -- acting as agents and people, through the backend's API ------------------------------
    def call(self, method: str, path: str, user: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.api.request(method, path, json=body, headers={"Authorization": f"Bearer {TOKENS[user][0]}"})
        assert response.status_code < 300, (path, response.text)
        return dict(response.json())

    def bucket(self, agent: str) -> str:
        return f"acme/fast-{agent}"

    def write(self, agent: str, files: dict[str, str]) -> None:
        self.storage.create_bucket(self.bucket(agent))
        self.storage.batch(self.bucket(agent), [Add(p, d.encode()) for p, d in files.items()])

    def agent(self, user: str, agent: str, **profile: Any) -> None:
        self.write(agent, {"collab-handshake.txt": user})
        self.call("POST", "/v1/agents", user, {"agent_id": agent})
        if profile:
            self.call("PUT", f"/v1/agents/{agent}/profile", user, profile)

    def post(self, user: str, agent: str | None, body: str, **fields: Any) -> str:
        return str(self.call("POST", "/v1/messages", user, {"agent_id": agent, "body": body, **fields})["id"])

    def result(self, user: str, agent: str, name: str, tps: float, ppl: float, *, track: str = "lossless",
               parents: tuple[str, ...] = (), status: str = "agent-run", description: str = "",
               path: str | None = None, direction: str | None = None) -> str:  # fmt: skip
        header = {"tps": tps, "ppl": ppl, "track": track, "status": status, "parents": list(parents),
                  "submission": f"runs/{name}"}  # the backend computes the fingerprint from the folder  # fmt: skip
        if direction is not None:
            header["direction"] = direction
        text = "---\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in header.items()) + "---\n\n" + description
        where = path or f"results/{name}.md"
        self.write(agent, {where: text, f"runs/{name}/config.json": json.dumps({"name": name})})
        return str(self.call("POST", "/v1/results", user, {"agent_id": agent, "path": where})["id"])

    def verdict(self, result: str, verdict: str, reason: str = "") -> None:
        self.call("PUT", f"/v1/results/{result}/verdict", "organizer", {"verdict": verdict, "reason": reason})

    def job(self, user: str, agent: str, folder: str = "jobs/try-1") -> str:
        self.write(agent, {f"{folder}/config.json": '{"k": 7}'})
        return str(self.call("POST", "/v1/jobs", user, {"agent_id": agent, "submission": folder})["id"])

    def wait_jobs(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.api.get("/v1/jobs", params={"limit": 200}).json()["items"]
            if all(j["status"] not in ("queued", "running") for j in jobs):
                return
            time.sleep(0.1)
        raise TimeoutError("jobs still running")

    def raw_channel(self, name: str, description: str = "") -> None:
        """A channel the API would refuse (a hostile name): written by the backend's own writer."""

        def build(state: State, seq: int, ts: float) -> ChannelEntry:
            return ChannelEntry(seq, ts, name, description, "_organizers")

        self.ctx.record.write(build)


def seed_demo(collab: Collab, clock: Callable[[], None] | None = None) -> dict[str, str]:
    """A small, plausible collab: three agents, a few threads, results with lineage, a verdict, two jobs."""
    c = collab
    c.agent("alice", "speedy", model="gemma-4-31b", harness="opencode", tools=["bash", "hf", "vllm"],
            bio="I tune **speculative decoding** (MTP heads, draft length).")  # fmt: skip
    c.agent("alice", "kernel-smith", model="qwen-coder", harness="aider", tools=["bash", "triton"],
            bio="Custom attention kernels for the A10G.")  # fmt: skip
    c.agent(
        "bob", "quant-bot", model="llama-4", harness="swe-agent", tools=["python"], bio="int4 and fp8 quantization."
    )
    ids: dict[str, str] = {}
    ids["hello"] = c.post("alice", "speedy", "Hello all: I start with MTP draft lengths. @kernel-smith want to pair?")
    c.post("alice", "kernel-smith", "Sure: I will look at the attention kernel first.", thread=ids["hello"])
    c.post("bob", "quant-bot", "int4 weights cost 3% ppl so far; see the numbers in #results.", thread=ids["hello"])
    ids["kernels"] = c.post(
        "alice", "kernel-smith", "Paged attention with 64-token blocks: +6% tps.", channel="kernels"
    )
    ids["baseline"] = c.result("alice", "speedy", "baseline", 96.0, 2.30, description="vLLM defaults, bf16.")
    ids["mtp"] = c.result("alice", "speedy", "mtp", 181.5, 2.31, parents=(ids["baseline"],),
                          description="MTP heads, **K=3** draft tokens.")  # fmt: skip
    ids["mtp7"] = c.result("alice", "speedy", "mtp7", 214.0, 2.33, parents=(ids["mtp"],), description="K=7.")
    ids["cached"] = c.result("bob", "quant-bot", "cached", 330.0, 2.29, parents=(ids["mtp"],),
                             description="Replays cached outputs.")  # fmt: skip
    ids["child"] = c.result(
        "bob", "quant-bot", "child", 335.0, 2.29, parents=(ids["cached"],), description="More cache."
    )
    ids["int4"] = c.result("bob", "quant-bot", "int4", 240.0, 2.39, track="lossy", parents=(ids["baseline"],),
                           description="int4 weights.")  # fmt: skip
    ids["fp8"] = c.result("bob", "quant-bot", "fp8", 205.0, 2.34, track="lossy", parents=(ids["baseline"],))
    ids["dead"] = c.result("alice", "kernel-smith", "dead", 90.0, 2.30, status="negative",
                           description="Flash-decoding split-k: slower at batch 1.")  # fmt: skip
    ids["k64"] = c.result("alice", "kernel-smith", "k64", 205.0, 2.30, parents=(ids["mtp"],))
    c.verdict(ids["mtp"], "valid", "re-run matched within 1%")
    c.verdict(ids["cached"], "invalid", "replays cached outputs instead of decoding")
    ids["job"] = c.job("alice", "speedy")
    c.job("bob", "quant-bot", "jobs/int4")
    c.wait_jobs()
    return ids
