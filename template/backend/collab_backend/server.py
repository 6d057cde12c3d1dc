"""How the backend is served: uvicorn, with an HTTP protocol that answers a broken request in the envelope.

uvicorn answers a request it cannot parse (a `Content-Length` that is not a number, a header
line without a colon) itself, in plain text, before the app sees it. `H11Protocol` answers it
with the API's envelope instead (`MALFORMED_REQUEST`, 400), so a client meets one error shape.
Serve the app with `uvicorn collab_backend.main:app --http collab_backend.server:H11Protocol`, as
the Dockerfile and `collab up` do.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol

from collab_backend.errors import envelope


class H11Protocol(_H11Protocol):
    """uvicorn's h11 protocol, with its 400 answer in the envelope."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            envelope(
                "MALFORMED_REQUEST", f"the HTTP request is malformed: {msg}", "send a well-formed HTTP/1.1 request"
            )
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()
