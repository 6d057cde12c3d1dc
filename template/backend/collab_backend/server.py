"""How the backend is served: uvicorn, with HTTP protocols that answer a broken request in the envelope.

uvicorn answers a request it cannot parse (a `Content-Length` that is not a number, a header
line without a colon) itself, in plain text, before the app sees it. The protocol classes here
answer it with the API's envelope instead (`MALFORMED_REQUEST`, 400), so a client meets one error
shape. `HttpToolsProtocol` is uvicorn's httptools parser (C, the fast one, and what production
serves with, on uvloop); `H11Protocol` is its pure-Python h11 one, for where httptools is not
installed. Serve the app with
`uvicorn collab_backend.main:app --loop uvloop --http collab_backend.server:HttpToolsProtocol`, as
the Dockerfile and `collab up` do.

`short_full_collections()` is the server process's garbage-collector policy (see its docstring).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol

from collab_backend.errors import envelope

HEAD_LIMIT = 64 * 1024  # bytes of a request line and headers, counted by the read (a few KiB in practice)
_HEADERS = [(b"content-type", b"application/json"), (b"connection", b"close")]


def _body(msg: str) -> bytes:
    return json.dumps(
        envelope("MALFORMED_REQUEST", f"the HTTP request is malformed: {msg}", "send a well-formed HTTP/1.1 request")
    ).encode()


class HttpToolsProtocol(_HttpToolsProtocol):
    """uvicorn's httptools protocol, with its 400 answer in the envelope and a bound on a request's head.

    httptools keeps a request line or a header however long it grows (h11 stops at 16 KiB), so
    the bytes that arrive while a head is incomplete are counted, and past `HEAD_LIMIT` the
    request is answered 400 and the connection closed: a client cannot grow the server's memory
    by more than that and one read.
    """

    _in_head = False  # a request's line and headers have begun and are not complete yet
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT:
                self.send_400_response(f"the request line and headers are larger than {HEAD_LIMIT // 1024} KiB")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        body = _body(msg)
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in [*self.server_state.default_headers, *_HEADERS, (b"content-length", b"%d" % len(body))]:
            head.append(name + b": " + value + b"\r\n")
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


class H11Protocol(_H11Protocol):
    """uvicorn's h11 protocol, with its 400 answer in the envelope."""

    def send_400_response(self, msg: str) -> None:
        body = _body(msg)
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


RESCAN_SECONDS = 3600.0  # how often at most a full collection scans everything again (see below)


def short_full_collections(
    rescan_seconds: float = RESCAN_SECONDS, clock: Callable[[], float] = time.monotonic
) -> Callable[[], None]:
    """Keep the cyclic garbage collector's full collections short; returns what undoes it.

    The record only grows: every write adds entries that live as long as the process. A full
    collection scans every object it has not frozen, so as writes accumulated each one took
    longer (tens of milliseconds after twenty thousand writes), and a request that met one
    waited that long. After each full collection its survivors are moved to the permanent
    generation (`gc.freeze`), so the next one scans only what came since. What is frozen is
    still freed when its last reference goes; a cycle that was alive at a full collection (a
    request in flight) and became garbage afterwards would stay, so once in `rescan_seconds`
    the survivors are given back instead (`gc.unfreeze`): the next full collection scans
    everything, frees such cycles, and its survivors are frozen again. That one is long (the
    whole heap), at most once an hour.
    """
    last_rescan = clock()

    def after(phase: str, info: dict[str, Any]) -> None:
        nonlocal last_rescan
        if phase != "stop" or info.get("generation") != 2:
            return
        if clock() - last_rescan >= rescan_seconds:
            last_rescan = clock()
            gc.unfreeze()
        else:
            gc.freeze()

    gc.callbacks.append(after)
    gc.freeze()  # what the start built (the record, the app) is frozen now, before the first request

    def undo() -> None:
        if after in gc.callbacks:
            gc.callbacks.remove(after)

    return undo
