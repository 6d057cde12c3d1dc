"""A scripted Hub on 127.0.0.1: the real huggingface_hub talks HTTP to it, and it answers as told.

Each answer is keyed by method and path (`("GET", "/api/buckets/acme/main")`); an unscripted
request gets a 404 without an error code, as an unknown route of any server would. An answer can
also hang (never send a byte until the server stops) to test timeouts. Only the control plane
can be scripted: Xet's CAS is reached by hf_xet in Rust, at the URL the token request returns, so
a test scripts the token request (`/api/buckets/{id}/xet-write-token`) and nothing after it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


def error(status: int, message: str, *, code: str | None = None, **headers: str) -> Answer:
    """An error answer as the Hub sends it: `{"error": message}`, optionally with `X-Error-Code`."""
    extra = dict(headers)
    if code:
        extra["X-Error-Code"] = code
    return Answer(status, {"error": message}, extra)


class ScriptedHub:
    """The server: `script` maps (method, path) to an `Answer`; `seen` lists every request's (method, path, body)."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], Answer] = {}
        self.seen: list[tuple[str, str, bytes]] = []
        self.stopping = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
                return

            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                hub.seen.append((self.command, path, self.rfile.read(length) if length else b""))
                answer = hub.script.get((self.command, path), error(404, "no such route"))
                if answer.hang:
                    hub.stopping.wait(30)
                    return
                body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer  # the stdlib's names

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[ScriptedHub]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stopping.set()
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)
