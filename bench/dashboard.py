"""Benchmark of the dashboard on a seeded local record (`nox -s bench`).

Seeds the same record as bench/backend.py (N agents, M messages, R results, half of the results
building on an earlier one), starts the real backend and the real dashboard as subprocesses on
loopback (the dashboard reaching the backend over HTTP, as on a Space), warms each page once, and
measures for each page, over one connection: the p50 and p95 of the time from request to the last
byte (the server's time: loopback adds well under a millisecond), the first request's time (it
builds what the backend caches until the next change: the thread index, the result lookups) and
the page's size. Pages are timed in order, so a cache built for one page serves the next ones.
Then an agent files a new result, and the overview's first request after it is timed (the median
of 5: the backend's result lookups are extended by the new result rather than rebuilt).

Targets (issue): every page under 150 ms p50 and 300 KB at 1k agents / 50k messages / 5k results,
and within 2x of that (300 ms, 600 KB) at 10k / 1M / 100k.
Traffic goes to 127.0.0.1 only, every request loop is bounded, and both servers are stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from backend import SIZES, Server, free_port, seed  # noqa: E402

TARGET_MS, TARGET_BYTES = {"small": 150.0, "large": 300.0}, {"small": 300_000, "large": 600_000}


class Dashboard:
    """The dashboard as a real process on loopback, stopped by PID."""

    def __init__(self, root: Path, document: dict, backend_url: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "COLLAB_SPEC": json.dumps(document),
            "COLLAB_BACKEND_URL": backend_url,
            "COLLAB_SIGN_IN": "local",
            "COLLAB_IDENTITY_FILE": str(root / "identities.json"),
            "PYTHONPATH": str(ROOT / "template" / "dashboard"),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "collab_dashboard.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log",
             "--loop", "uvloop", "--http", "httptools"],
            env=env,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the dashboard exited during start")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError("the dashboard did not answer")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


PAGES = {
    "overview": "/",
    "leaderboard": "/leaderboard",
    "lineage": "/lineage",
    "board": "/board",
    "board channel": "/board?channel=general",
    "search": "/board/search?q=config+12",
    "jobs": "/jobs",
    "join": "/join",
    "rulings": "/rulings",
    "run requests": "/run-requests",
    "credit": "/credit",
    "directions": "/directions",
}


def pages_with_ids(api: httpx.Client, agents: list[str]) -> dict[str, str]:
    """Pages of one thread, agent and result, taken from the seeded record (asked after the others ran)."""
    thread = api.get("/v1/threads", params={"channel": "general", "limit": 1}).json()["items"][0]["id"]
    result = api.get("/v1/lineage", params={"limit": 1}).json()["items"][0]["id"]
    return {
        "thread": f"/threads/{thread}",
        "agent": f"/agents/{agents[len(agents) // 2]}",
        "result": f"/results/{result}",
    }


def measure(client: httpx.Client, path: str, samples: int, size: str) -> dict[str, object]:
    start = time.perf_counter()
    client.get(path).raise_for_status()  # the first request builds what is cached until the next change
    first = (time.perf_counter() - start) * 1000
    times, length = [], 0
    for _ in range(samples):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        length = len(response.content)
    times.sort()
    p50 = round(statistics.median(times), 1)
    return {"p50_ms": p50, "p95_ms": round(times[int(len(times) * 0.95)], 1), "first_ms": round(first, 1),
            "bytes": length, "within_target": p50 <= TARGET_MS[size] and length <= TARGET_BYTES[size]}  # fmt: skip


def after_new_results(root: Path, api: httpx.Client, web: httpx.Client, agent: str, rounds: int = 5) -> float:
    """The overview's first request after each of `rounds` new results (median, ms)."""
    bucket = root / "hub" / "buckets" / f"bench/speed-{agent}"
    (bucket / "results").mkdir(parents=True, exist_ok=True)
    (bucket / "collab-handshake.txt").write_text(f"user-{agent}", encoding="utf-8")
    times = []
    for n in range(rounds):
        path = f"results/new-{n}.md"
        text = f"---\ntps: {300 + n}\nppl: 2.3\ntrack: lossless\nfingerprint: sha256:{n:064x}\n---\n\nnew {n}\n"
        (bucket / path).write_text(text, encoding="utf-8")
        filed = api.post("/v1/results", json={"agent_id": agent, "path": path},
                         headers={"Authorization": f"Bearer tok-{agent}"})  # fmt: skip
        if filed.status_code != 201:
            raise RuntimeError(f"filing a result failed: {filed.text}")
        start = time.perf_counter()
        web.get("/").raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def run(size: str, samples: int) -> dict[str, object]:
    agents_n, messages_n, results_n = SIZES[size]
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="collab-bench-dashboard-") as tmp:
        root = Path(tmp)
        document, agents = seed(root, agents_n, messages_n, results_n, rng, lineage=True)
        backend = Server(root, document)
        dashboard = None
        try:
            backend.wait_for_digest(agents[0])
            dashboard = Dashboard(root, document, backend.url)
            out: dict[str, object] = {"size": size, "agents": agents_n, "messages": messages_n, "results": results_n}
            with httpx.Client(base_url=backend.url, timeout=120) as api, httpx.Client(base_url=dashboard.url,
                                                                                      timeout=120) as web:  # fmt: skip
                # The pages without ids first: their first requests build the backend's caches.
                for name, path in PAGES.items():
                    out[name] = measure(web, path, samples, size)
                for name, path in pages_with_ids(api, agents).items():
                    out[name] = measure(web, path, samples, size)
                out["overview after a new result"] = {"first_ms": after_new_results(root, api, web, agents[0])}
        finally:
            if dashboard is not None:
                dashboard.stop()
            backend.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=[*SIZES, "all"], default="small")
    parser.add_argument("--samples", type=int, default=30, help="requests per page")
    args, _ = parser.parse_known_args()  # the backend benchmark's other options are not ours
    for size in SIZES if args.size == "all" else [args.size]:
        print(json.dumps(run(size, min(args.samples, 200)), indent=2), flush=True)


if __name__ == "__main__":
    main()
