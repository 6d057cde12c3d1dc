"""Benchmark of the collab backend on a seeded local record (`nox -s bench`).

Seeds a local folder hub with an index of N agents, M messages and R results (index segments
only: reads and restarts are served from the index, so the message files are not needed), starts
the real server as a subprocess on loopback, and measures:

- process start to first digest;
- p50/p95 latency over one connection for the digest, an inbox page after a cursor, the
  leaderboard and `messages?limit=50`;
- digest requests per second over 16 concurrent connections;
- a raw post's latency over one connection (p50/p95);
- raw posts acknowledged per second over 16 concurrent connections, with the digest's latency
  (p50/p99) measured on one more connection during that burst;
- promoted posts per second, sustained, over 16 concurrent connections;
- the server's resident memory after the start and at the end (its peak);
- a clean stop (which writes a snapshot), then a restart from it to the first digest.

The server runs on uvicorn with the loop and HTTP parser named by `--loop` and `--http` (default:
uvloop and httptools, as the Dockerfile serves it; `--http h11 --loop asyncio` for the pure-Python
stack); the output says which. Its modules' bytecode is written before it is timed, as in the
image (pip compiles what it installs, the Dockerfile the backend), also where
`PYTHONDONTWRITEBYTECODE` is set: compiling them at each start would add most of a second.

Targets (`TARGETS`; the output's `targets` says which a run met): the digest's p50 <= 2 ms (small)
/ 5 ms (large); >= 500 digest req/s with 16 connections; a raw post <= 4 ms p50 (small); >= 1,000
raw posts/s at 16 connections with the digest's p99 <= 10 ms meanwhile; start to first digest from
a snapshot <= 3 s at the large size; peak resident memory <= 1.5 GB (large); >= 200 promoted
posts/s.
Traffic goes to 127.0.0.1 only, every request loop is bounded, and the server is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "template" / "backend")]

from collab_backend import naming  # noqa: E402
from collab_backend.record.entries import AgentEntry, ChannelEntry, MessageEntry, ResultEntry, VerdictEntry, encode  # noqa: E402
from provision.spec import load_spec  # noqa: E402

T = TypeVar("T")
SIZES = {"small": (1_000, 50_000, 5_000), "large": (10_000, 1_000_000, 100_000)}
SEGMENT = 50_000
SPEC = """\
spec_version: 2
challenge: {org: bench, slug: speed, title: Backend benchmark, type: gemma}
scoring:
  score_field: tps
  metrics: [{field: ppl, guardrail: {max: 2.42}}]
  tracks: [{name: lossless}, {name: lossy}]
  noise: {kind: relative, sigma: 0.004, z: 2.5, min_margin: 0.01}
board:
  raw_posts: {limit: 100000, window_seconds: 60}
  promotions: {limit: 100000, window_seconds: 60}
  registrations: {limit: 100000, window_seconds: 60}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(
    root: Path, agents: int, messages: int, results: int, rng: random.Random, *, lineage: bool = False
) -> tuple[dict, list[str]]:
    """Write the spec, identities and index segments; return the spec document and agent ids.

    With `lineage`, half the results build on an earlier one (the dashboard's lineage graph).
    """
    (root / "challenge.yaml").write_text(SPEC, encoding="utf-8")
    document = load_spec(root / "challenge.yaml").document
    central = document["storage"]["central_bucket"]
    index = root / "hub" / "buckets" / central / naming.INDEX_PREFIX
    index.mkdir(parents=True)
    (root / "hub" / "buckets" / document["storage"]["audit_bucket"]).mkdir(parents=True)
    ids = [f"agent-{i:05d}" for i in range(agents)]
    identities = {f"tok-{a}": {"user": f"user-{a}", "orgs": {"bench": "contributor"}} for a in ids}
    (root / "identities.json").write_text(json.dumps(identities), encoding="utf-8")
    ts = time.time() - 86_400
    entries: list[str] = []
    seq = 0
    segments: list[tuple[int, int]] = []

    def add(line_of: object) -> None:
        nonlocal seq
        entries.append(encode(line_of))  # type: ignore[arg-type]
        if len(entries) == SEGMENT:
            flush()

    def flush() -> None:
        if not entries:
            return
        first = seq - len(entries) + 1
        (index / f"{first:012d}-{seq:012d}-2.jsonl").write_text("\n".join(entries) + "\n", encoding="utf-8")
        segments.append((first, seq))
        entries.clear()

    for name in ("general", "results", "help"):
        seq += 1
        add(ChannelEntry(seq, ts, name, "", naming.ORGANIZERS))
    for agent in ids:
        seq += 1
        add(AgentEntry(seq, ts, agent, f"user-{agent}", f"bench/speed-{agent}"))
    message_ids: list[str] = []
    result_ids: list[str] = []
    per_result = max(1, messages // max(1, results))
    for i in range(messages):
        seq += 1
        ts += 0.01
        author = rng.choice(ids)
        mentions = (rng.choice(ids),) if i % 3 == 0 else ()
        thread = rng.choice(message_ids[-500:]) if message_ids and i % 5 == 0 else None
        mid = f"{int(ts * 1000):013d}-{seq:08d}"
        body = f"note {i} from {author}: tried config {rng.randrange(10**6)} " + ("@" + mentions[0] if mentions else "")
        add(MessageEntry(seq, ts, mid, author, f"user-{author}", rng.choice(("general", "results", "help")), body,
                         thread=thread, mentions=mentions))  # fmt: skip
        message_ids.append(mid)
        if i % per_result == 0 and len(result_ids) < results:
            seq += 1
            rid = f"r{int(ts * 1000):013d}-{seq:08d}"
            score = rng.uniform(40, 480)
            source = {"bucket": f"bench/speed-{author}", "path": f"r{seq}.md", "hash": f"{seq:064x}"}
            metrics = {"ppl": rng.uniform(2.0, 2.5)}
            track = rng.choice(("lossless", "lossy"))
            parents = (rng.choice(result_ids[-200:]),) if lineage and result_ids and rng.random() < 0.5 else ()
            add(ResultEntry(seq, ts, rid, author, f"user-{author}", score, "agent-run", metrics, track, parents,
                            "sha256:bench", "", source))  # fmt: skip
            result_ids.append(rid)
            if len(result_ids) % 7 == 0:
                seq += 1
                add(VerdictEntry(seq, ts, rid, rng.choice(("valid", "invalid")), "human:bench"))
    flush()
    return document, ids


# The targets, each with the sizes it holds at and its check on a run's output (`targets`).
TARGETS: dict[str, tuple[tuple[str, ...], Callable[[dict], bool]]] = {
    "digest p50 <= 2 ms": (("small",), lambda out: out["digest"]["p50_ms"] <= 2),
    "digest p50 <= 5 ms": (("large",), lambda out: out["digest"]["p50_ms"] <= 5),
    "digest >= 500 requests/s at 16 connections": (tuple(SIZES), lambda out: out["digest_rps_16_connections"] >= 500),
    "raw post p50 <= 4 ms at 1 connection": (("small",), lambda out: out["raw_post_1_connection"]["p50_ms"] <= 4),
    ">= 1,000 raw posts/s at 16 connections with the digest's p99 <= 10 ms meanwhile": (
        tuple(SIZES),
        lambda out: (
            out["raw_posts_16_connections"]["writes_per_s"] >= 1_000
            and out["raw_posts_16_connections"]["digest_during_burst"]["p99_ms"] <= 10
        ),
    ),
    ">= 200 promoted posts/s at 16 connections": (tuple(SIZES), lambda out: out["promoted_posts_per_s"] >= 200),
    "restart from the snapshot to first digest <= 3 s": (
        ("large",),
        lambda out: out["restart_from_snapshot_to_first_digest_s"] <= 3,
    ),
    "peak resident memory <= 1.5 GB": (("large",), lambda out: out["memory_at_end"]["peak_mb"] <= 1_500),
}


def targets(out: dict) -> dict[str, bool]:
    """Whether a run's output meets each target that holds at its size."""
    return {name: check(out) for name, (sizes, check) in TARGETS.items() if out["size"] in sizes}


PROTOCOLS = {"httptools": "collab_backend.server:HttpToolsProtocol", "h11": "collab_backend.server:H11Protocol"}


MODULES = {  # what the server imports, for each `--loop` and `--http`
    "uvloop": ["uvloop", "uvicorn.loops.uvloop"],
    "asyncio": ["uvicorn.loops.asyncio"],
    "httptools": ["httptools", "uvicorn.protocols.http.httptools_impl"],
    "h11": ["h11", "uvicorn.protocols.http.h11_impl"],
}


def server_env() -> dict[str, str]:
    """The environment the server runs in: the kit's and the backend's code on its path, bytecode written."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "template" / "backend")])}


def compile_ahead(loop: str, http: str) -> None:
    """Write the bytecode of what the server imports, as installing it in the image does."""
    modules = ["uvicorn.main", "collab_backend.main", "collab_backend.server", *MODULES[loop], *MODULES[http]]
    subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], env=server_env(), check=True)


class Server:
    """The backend as a real process on loopback, stopped by PID."""

    def __init__(self, root: Path, document: dict, loop: str = "uvloop", http: str = "httptools") -> None:
        self.port = free_port()
        env = {
            **server_env(),
            "COLLAB_SPEC": json.dumps(document),
            "COLLAB_STORAGE": "local",
            "COLLAB_LOCAL_ROOT": str(root / "hub"),
            "COLLAB_IDENTITY_FILE": str(root / "identities.json"),
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "collab_backend.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log",
             "--loop", loop, "--http", PROTOCOLS[http]],
            env=env,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_for_digest(self, agent: str, timeout: float = 120.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited during start")
            try:
                if httpx.get(f"{self.url}/v1/digest/{agent}", timeout=5).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError("no digest within the timeout")

    def memory_mb(self) -> dict[str, float]:
        """The server's resident memory now and at its peak (Linux: /proc), in MB."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = round(int(value.split()[0]) / 1024, 1)
        return {"rss_mb": fields.get("VmRSS", 0.0), "peak_mb": fields.get("VmHWM", 0.0)}

    def stop(self) -> float:
        """A clean stop (SIGINT: the record writes its snapshot); the seconds it took."""
        started = time.perf_counter()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return round(time.perf_counter() - started, 2)


def latency(client: httpx.Client, paths: list[str]) -> dict[str, float]:
    samples = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 3), "p95_ms": round(samples[int(len(samples) * 0.95)], 3)}


class Connection:
    """One keep-alive HTTP/1.1 connection to loopback that costs its process as little as it can.

    The load runs on the same machine as the server: a full client (httpx costs about 1 ms of
    CPU a request) would take the cores the server is measured on. This one writes a request
    line and headers and reads an answer framed by its `Content-Length`, and nothing more.
    """

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: object = None, token: str | None = None) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}", f"content-length: {len(data)}"]
        head += ["content-type: application/json"] if data else []
        head += [f"authorization: Bearer {token}"] if token else []
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        if "content-length" not in fields:
            raise RuntimeError(f"an answer without Content-Length to {method} {path}")
        return int(lines[0].split(" ", 2)[1]), await reader.readexactly(int(fields["content-length"]))

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


def run_load(main: Callable[[], Awaitable[T]]) -> T:
    """Run a load on an event loop of this process (uvloop where installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


def throughput(url: str, paths: list[str], connections: int, seconds: float) -> float:
    """GET requests per second over `connections` keep-alive connections for `seconds`."""

    async def load() -> float:
        stop = time.perf_counter() + seconds
        counts = [0] * connections

        async def worker(n: int) -> None:
            client, i = Connection(url), n
            try:
                while time.perf_counter() < stop:
                    status, _ = await client.request("GET", paths[i % len(paths)])
                    if status != 200:
                        raise RuntimeError(f"GET {paths[i % len(paths)]} was answered {status}")
                    counts[n] += 1
                    i += connections
            finally:
                client.close()

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        return sum(counts) / (time.perf_counter() - start)

    return run_load(load)


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    at = lambda q: round(samples[min(len(samples) - 1, int(len(samples) * q))], 3)  # noqa: E731
    return {"p50_ms": round(statistics.median(samples), 3), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def post_latency(url: str, agents: list[str], samples: int) -> dict[str, float]:
    """A raw post's latency over one connection: an idle writer, one request at a time."""
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(samples):
            agent = agents[i % len(agents)]
            start = time.perf_counter()
            r = client.post("/v1/messages", json={"agent_id": agent, "body": f"solo {i}"},
                            headers={"Authorization": f"Bearer tok-{agent}"})  # fmt: skip
            times.append((time.perf_counter() - start) * 1000)
            if r.status_code != 201:
                raise RuntimeError(f"a raw post was answered {r.status_code}: {r.text[:200]}")
    return percentiles(times)


def write_burst(url: str, agents: list[str], connections: int, seconds: float) -> dict[str, object]:
    """Raw posts over `connections` connections for `seconds`; the digest's latency on one more meanwhile."""

    async def load() -> dict[str, object]:
        stop = time.perf_counter() + seconds
        counts, refused = [0] * connections, [0] * connections
        reads: list[float] = []

        async def writer(n: int) -> None:
            client, i = Connection(url), n
            try:
                while time.perf_counter() < stop:
                    agent = agents[i % len(agents)]
                    status, _ = await client.request(
                        "POST", "/v1/messages", {"agent_id": agent, "body": f"burst {i}"}, f"tok-{agent}"
                    )
                    if status == 201:
                        counts[n] += 1
                    else:
                        refused[n] += 1
                    i += connections
            finally:
                client.close()

        async def reader() -> None:
            client, i = Connection(url), 0
            try:
                while time.perf_counter() < stop:
                    start = time.perf_counter()
                    status, _ = await client.request("GET", f"/v1/digest/{agents[i % len(agents)]}")
                    reads.append((time.perf_counter() - start) * 1000)
                    if status != 200:
                        raise RuntimeError(f"a digest was answered {status}")
                    i += 7
                    await asyncio.sleep(0.005)  # a reader polling, not a second load
            finally:
                client.close()

        start = time.perf_counter()
        await asyncio.gather(reader(), *(writer(n) for n in range(connections)))
        elapsed = time.perf_counter() - start
        if sum(refused):
            raise RuntimeError(f"{sum(refused)} raw posts were refused during the burst")
        return {"writes_per_s": round(sum(counts) / elapsed, 1), "digest_during_burst": percentiles(reads)}

    return run_load(load)


def promotions(root: Path, server: Server, agents: list[str], total: int, connections: int) -> float:
    chosen = agents[: min(len(agents), 200)]
    for agent in chosen:
        bucket = root / "hub" / "buckets" / f"bench/speed-{agent}"
        (bucket / "posts").mkdir(parents=True, exist_ok=True)
        (bucket / naming.HANDSHAKE_FILE).write_text(f"user-{agent}", encoding="utf-8")
        for n in range(total // len(chosen) + 1):
            (bucket / "posts" / f"{n}.md").write_text(f"---\nchannel: general\n---\n\npost {n} by {agent}", "utf-8")
    jobs = [(agents[i % len(chosen)], f"posts/{i // len(chosen)}.md") for i in range(total)]

    def worker(slice_: list[tuple[str, str]]) -> int:
        done = 0
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for agent, path in slice_:
                r = client.post("/v1/messages/promote", json={"agent_id": agent, "path": path},
                                headers={"Authorization": f"Bearer tok-{agent}"})  # fmt: skip
                done += r.status_code == 201
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        created = sum(pool.map(worker, [jobs[i::connections] for i in range(connections)]))
    elapsed = time.perf_counter() - start
    if created != total:
        raise RuntimeError(f"only {created} of {total} promotions succeeded")
    return total / elapsed


def run(size: str, seconds: float, samples: int, loop: str, http: str) -> dict[str, object]:
    agents_n, messages_n, results_n = SIZES[size]
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="collab-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        document, agents = seed(root, agents_n, messages_n, results_n, rng)
        seeded = time.perf_counter() - t0
        out: dict[str, object] = {"size": size, "agents": agents_n, "messages": messages_n, "results": results_n}
        out |= {"loop": loop, "http": http, "python": sys.version.split()[0], "seed_s": round(seeded, 1)}
        compile_ahead(loop, http)
        server = Server(root, document, loop, http)
        try:
            out["start_to_first_digest_s"] = round(server.wait_for_digest(agents[0]), 2)
            out["memory_after_start"] = server.memory_mb()
            with httpx.Client(base_url=server.url, timeout=10) as client:
                some = [rng.choice(agents) for _ in range(samples)]
                inbox_cursor = {a: client.get(f"/v1/inbox/{a}?limit=5").json()["items"] for a in some[:50]}
                cursors = [f"/v1/inbox/{a}?limit=50&before={items[-1]['id']}" if items else f"/v1/inbox/{a}?limit=50"
                           for a, items in inbox_cursor.items()]  # fmt: skip
                client.get("/v1/leaderboard")  # first call builds the cached ranking
                out["digest"] = latency(client, [f"/v1/digest/{a}" for a in some])
                out["inbox_with_cursor"] = latency(client, [cursors[i % len(cursors)] for i in range(samples)])
                out["leaderboard"] = latency(client, ["/v1/leaderboard"] * samples)
                out["messages_limit_50"] = latency(client, ["/v1/messages?limit=50"] * samples)
            out["digest_rps_16_connections"] = round(
                throughput(server.url, [f"/v1/digest/{a}" for a in agents[:500]], 16, seconds), 1
            )
            out["raw_post_1_connection"] = post_latency(server.url, agents[:1000], samples)
            out["raw_posts_16_connections"] = write_burst(server.url, agents[:1000], 16, seconds)
            out["promoted_posts_per_s"] = round(promotions(root, server, agents, 2000, 16), 1)
            out["memory_at_end"] = server.memory_mb()
        finally:
            out["clean_stop_with_snapshot_s"] = server.stop()
        again = Server(root, document, loop, http)
        try:
            out["restart_from_snapshot_to_first_digest_s"] = round(again.wait_for_digest(agents[0]), 2)
            out["memory_after_restart_from_snapshot"] = again.memory_mb()
        finally:
            again.stop()
    out["targets"] = targets(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=[*SIZES, "all"], default="small")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    parser.add_argument("--samples", type=int, default=500, help="requests per latency measurement")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="uvicorn's event loop")
    parser.add_argument("--http", choices=list(PROTOCOLS), default="httptools", help="uvicorn's HTTP parser")
    args = parser.parse_args()
    for size in SIZES if args.size == "all" else [args.size]:
        print(json.dumps(run(size, args.seconds, args.samples, args.loop, args.http), indent=2), flush=True)


if __name__ == "__main__":
    main()
