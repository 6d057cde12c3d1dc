"""What every request passes before a route sees it, outermost first.

1. `AuditTrail`: every write request (POST, PUT, DELETE) and its outcome go to the audit log; one
   that changed the record as an event of its own, any other (refused, or asking for what already
   held) counted with its kind, so no caller can grow the log faster than the record.
2. `BodyLimit`: a `Content-Length` that is not a number is a malformed request; bodies of writes
   over the collab's size are refused, by header and while streaming.
3. `JsonGuard`: a JSON body must be UTF-8, nest at most `MAX_JSON_DEPTH` levels and hold no text
   the record cannot store (a lone surrogate, a NUL), wherever it sits in the body.

Each refusal is the API's one envelope, with its code noted for the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from collab_backend import errors
from collab_backend.audit import AuditLog
from collab_backend.errors import APIError
from collab_backend.record.store import request_writes
from collab_backend.text import is_surrogate, unstorable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_JSON_DEPTH = 32  # the API's bodies nest two levels; this leaves room and refuses what only attacks
_READS = ("GET", "HEAD", "OPTIONS")


async def refuse(scope: Scope, send: Send, error: APIError) -> None:
    """Answer with the error's envelope and note its code for the audit log."""
    scope.setdefault("state", {})["error_code"] = error.code
    body = json.dumps(errors.envelope(error.code, error.message, error.hint)).encode()
    headers = [
        (b"content-type", b"application/json"),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AuditTrail:
    """Record every write request and its outcome in the audit log (see the module's docstring)."""

    def __init__(self, app: ASGIApp, audit: Callable[[], AuditLog | None]) -> None:
        self.app, self.audit = app, audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS:
            await self.app(scope, receive, send)
            return
        status = 500
        written: list[int] = []
        token = request_writes.set(written)  # the record adds the entries it writes for this request

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            request_writes.reset(token)
            log = self.audit()
            if log is not None:
                state = scope.get("state") or {}
                event = {
                    "method": scope["method"], "status": status, "accepted": 200 <= status < 300,
                    "code": state.get("error_code"), "user": state.get("audit_user"),
                }  # fmt: skip
                if written and event["accepted"]:
                    log.record(**event, path=scope["path"], entries=written)
                else:
                    route = scope.get("route")
                    log.tally(**event, path=getattr(route, "path", None) or "(no route)")


class BodyLimit:
    """Refuse request bodies over `limit` bytes, by header and while streaming, with the envelope."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app, self._limit = app, limit

    @property
    def limit(self) -> int:
        return self._limit()

    def _too_large(self) -> APIError:
        return APIError("BODY_TOO_LARGE", f"request bodies are limited to {self.limit} bytes", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and not (declared.isdigit() and declared.isascii()):
            error = APIError("MALFORMED_REQUEST", "the Content-Length header is not a number", "send the body's size")
            await refuse(scope, send, error)
            return
        if scope["method"] in _READS:  # no route reads a body there
            await self.app(scope, receive, send)
            return
        if declared is not None and int(declared) > self.limit:
            await refuse(scope, send, self._too_large())
            return
        seen = 0
        too_big = False

        async def limited() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if too_big and not started:
                return  # the app answered a cut-off body; the 413 below replaces its answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except Exception:
            if not too_big:
                raise
        if too_big and not started:
            await refuse(scope, send, self._too_large())


def is_json(scope: Scope) -> bool:
    """Whether the body is guarded as JSON: its content type says so, or says nothing (guarded either way)."""
    content_type: bytes | None = dict(scope.get("headers") or []).get(b"content-type")
    if content_type is None:
        return True
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def json_problem(body: bytes) -> APIError | None:
    """Why a JSON body cannot be taken (not UTF-8, too deep, unstorable text), or None.

    A body that is not JSON at all is left to the route, which answers VALIDATION_FAILED.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return APIError("NOT_UTF8", f"the body is not UTF-8 (byte {exc.start})", "send UTF-8 encoded JSON")
    too_deep = APIError("VALIDATION_FAILED", f"the body nests deeper than {MAX_JSON_DEPTH} levels", None)
    try:
        value = json.loads(text)
    except RecursionError:
        return too_deep
    except ValueError:
        return None
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = unstorable(item)
            if problem:
                code = "NOT_UTF8" if is_surrogate(problem) else "VALIDATION_FAILED"
                hint = "send the character itself, or a valid pair of escapes" if code == "NOT_UTF8" else "remove it"
                return APIError(code, f"`{where or 'body'}` holds {problem}, which the record cannot store", hint)
            continue
        if isinstance(item, dict | list) and depth > MAX_JSON_DEPTH:
            return too_deep
        if isinstance(item, dict):
            for key, inner in item.items():
                problem = unstorable(key)
                if problem:
                    code = "NOT_UTF8" if is_surrogate(problem) else "VALIDATION_FAILED"
                    return APIError(code, f"a key in `{where or 'body'}` holds {problem}", "rename the key")
                stack.append((inner, _where(where, key), depth + 1))
        elif isinstance(item, list):
            stack += [(inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item)]
    return None


class JsonGuard:
    """Refuse a JSON body the record could not store before any route parses it (see `json_problem`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS or not is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # a disconnect (or a body cut off as too large): the route sees it as it came
            body += message.get("body", b"")
            if not message.get("more_body", False):
                error = json_problem(body) if body else None
                if error is not None:
                    await refuse(scope, send, error)
                    return
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
