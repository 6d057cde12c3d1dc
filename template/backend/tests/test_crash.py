"""Crashes: the real server, killed with SIGKILL in the middle of a burst of writes, twice, loses no
write it acknowledged and doubles none."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_world import SPEC_YAML

from collab_backend import naming
from collab_backend.storage import Add
from collab_backend.storage.local import LocalStorage
from provision.spec import load_spec

BACKEND = Path(__file__).resolve().parents[1]
WORKERS = 6
ACKS_BEFORE_KILL = 60
FILES = 12
START_TIMEOUT = 60.0
TOKENS = {"hf_alice_crash": "alice", "hf_bob_crash": "bob"}


class Server:
    """The backend as `collab up` runs it (uvicorn, local storage), on a socket this test bound."""

    def __init__(self, root: Path, document: dict[str, Any]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(BACKEND),
            "COLLAB_SPEC": json.dumps(document),
            "COLLAB_STORAGE": "local",
            "COLLAB_LOCAL_ROOT": str(root / "hub"),
            "COLLAB_IDENTITY_FILE": str(root / "identities.json"),
            "COLLAB_JOBS": "off",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "collab_backend.main:app", "--fd", str(self.sock.fileno()),
             "--loop", "uvloop", "--http", "collab_backend.server:HttpToolsProtocol", "--log-level", "warning"],
            env=env, pass_fds=[self.sock.fileno()], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while call(self.url, "GET", "/v1/healthz")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the backend did not start: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, by PID: no shutdown, no flush."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.sock.close()


def call(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)  # noqa: S310  # our own loopback server
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:  # refused or cut: the server is down (or being killed)
        return 0, None


@pytest.fixture
def collab(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any], LocalStorage]]:
    text = SPEC_YAML
    for kind in ("raw_posts", "promotions"):
        text = text.replace(f"{kind}: {{limit: 5,", f"{kind}: {{limit: 100000,")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "challenge.yaml"
        path.write_text(text, encoding="utf-8")
        document = load_spec(path).document
    storage = LocalStorage(tmp_path / "hub")
    for bucket in (document["storage"]["central_bucket"], document["storage"]["audit_bucket"]):
        storage.create_bucket(bucket)
    identities = {token: {"user": user, "orgs": {"acme": "contributor"}} for token, user in TOKENS.items()}
    (tmp_path / "identities.json").write_text(json.dumps(identities), encoding="utf-8")
    for user in TOKENS.values():
        bucket = f"acme/fast-{user}-agent"
        storage.create_bucket(bucket)
        storage.batch(bucket, [Add(naming.HANDSHAKE_FILE, user.encode())])
        storage.batch(bucket, [Add(f"posts/{i}.md", f"post {i} of {user}".encode()) for i in range(FILES)])
    yield tmp_path, document, storage


def burst(server: Server, acked: list[tuple[str, str]]) -> None:
    """Post and promote from several threads until ACKS_BEFORE_KILL writes were acknowledged, then SIGKILL."""
    stop = threading.Event()
    counter = iter(range(10**6))
    lock = threading.Lock()

    def writer(token: str) -> None:
        agent = f"{TOKENS[token]}-agent"
        while not stop.is_set():
            with lock:
                n = next(counter)
            if n % 2:
                status, body = call(server.url, "POST", "/v1/messages", {"agent_id": agent, "body": f"raw {n}"}, token)
            else:
                path = f"posts/{n // 2 % FILES}.md"  # the same files again and again: the first promotion holds
                status, body = call(
                    server.url, "POST", "/v1/messages/promote", {"agent_id": agent, "path": path}, token
                )
            if status in (200, 201):
                with lock:
                    acked.append((body["id"], body["body"]))
            elif status == 0:
                return

    threads = [threading.Thread(target=writer, args=(token,)) for token in TOKENS for _ in range(WORKERS // 2)]
    before = len(acked)
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) - before < ACKS_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # mid-burst: requests are in flight in every thread
    stop.set()
    for thread in threads:
        thread.join(30)
    assert len(acked) - before >= ACKS_BEFORE_KILL


def check(server: Server, storage: LocalStorage, central: str, acked: list[tuple[str, str]]) -> None:
    """Every acknowledged message is served and its file is in the bucket; no message is there twice."""
    for message_id, body in acked:
        status, served = call(server.url, "GET", f"/v1/messages/{message_id}")
        assert status == 200 and served["body"] == body, (message_id, status)
    files = {f.path for f in storage.list(central, "message_board/").items}
    for message_id, _ in acked:
        assert any(p.startswith(f"message_board/{message_id}-") for p in files), message_id
    bodies, cursor = [], ""
    while cursor is not None:
        page = call(server.url, "GET", f"/v1/messages?limit=200{cursor and f'&before={cursor}'}")[1]
        bodies += [m["body"] for m in page["items"]]
        cursor = page["next"]
    promoted = [b for b in bodies if b.startswith("post ")]
    assert promoted and len(promoted) == len(set(promoted))  # a file's content is on the board once, crash or not


def test_sigkill_in_a_burst_loses_no_acknowledged_write(collab: tuple[Path, dict[str, Any], LocalStorage]) -> None:
    root, document, storage = collab
    central = document["storage"]["central_bucket"]
    acked: list[tuple[str, str]] = []
    server = Server(root, document)
    try:
        for token, user in TOKENS.items():
            assert call(server.url, "POST", "/v1/agents", {"agent_id": f"{user}-agent"}, token)[0] == 201
        for _ in range(2):
            burst(server, acked)
            server = Server(root, document)  # a restart reads the index back and repairs missing files
            check(server, storage, central, acked)
    finally:
        server.kill()
