"""`POST /v1/messages`, the board's hot write, served before FastAPI's routing.

Measured under a burst of posts (`bench/backend.py`: raw posts over 16 connections, the digest
read meanwhile), FastAPI's handling of a post (routing, solving its dependencies, validating the
body, rendering the answer) took about a third of the event loop's time for it, and reads waited
behind the queue of posts. `HotPost` serves the common case itself: a JSON body that the route's
own model (`MessageCreate`) accepts, from a caller whose token is known without a network call.
It checks the token as `deps.get_identity` does, calls the same services (`board.post_raw`,
`board.post_human`), answers the same body (`message_json`, 201), turns a failure into the answer
the app's own exception handlers give, and leaves the audit trail what the route leaves it.

Everything else goes on to the FastAPI route, which stays the documented operation: a body the
model refuses (the route words the error), a token only the Hub can check (looked up in a worker
thread there), a malformed `Authorization`, another path or method. `tests/test_hot_path.py`
sends the same requests to the app with and without it and compares the answers.
"""

from __future__ import annotations

import inspect
from collections.abc import MutableMapping
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import BaseRoute

from collab_backend.deps import bearer_token
from collab_backend.errors import APIError
from collab_backend.middleware import ASGIApp, Message, Receive, Scope, Send, is_json
from collab_backend.models import Json, MessageCreate, message_json
from collab_backend.services import board

PATH = "/v1/messages"


class HotPost:
    """Serve `POST /v1/messages` when it needs nothing FastAPI adds; hand every other request on."""

    def __init__(self, app: ASGIApp, route: BaseRoute | None = None) -> None:
        self.app, self.route = app, route  # `route`: the FastAPI route, named in the audit trail as it would be

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH or not _says_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:  # the body as it came (JsonGuard and BodyLimit have read and checked it already)
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        ctx = scope["app"].state.ctx
        token = _bearer(scope)
        try:
            post = MessageCreate.model_validate_json(body) if messages[-1]["type"] == "http.request" else None
            identity = ctx.identity.cached(token) if token is not None and post is not None else None
        except (ValidationError, APIError):
            post = identity = None
        if post is None or identity is None:
            await self.app(scope, replay, send)  # the route answers it, errors worded as the API words them
            return
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["audit_user"] = identity.user
        if self.route is not None:
            scope["route"] = self.route
        try:
            if post.agent_id is None:
                entry = await board.post_human(ctx, identity, post.body, post.channel, post.thread, post.refs,
                                               post.direction)  # fmt: skip
            else:
                entry = await board.post_raw(ctx, identity, post.agent_id, post.body, post.channel, post.thread,
                                             post.refs, post.direction)  # fmt: skip
        except Exception as exc:
            await _failed(scope, receive, send, exc)
            return
        await Json(message_json(entry), status_code=201)(scope, receive, send)


def route_of(routes: list[BaseRoute]) -> BaseRoute | None:
    """The FastAPI route of `POST /v1/messages` among `routes`: what the audit trail names for a refused post."""
    return next((r for r in routes if getattr(r, "path", None) == PATH and "POST" in getattr(r, "methods", ())), None)


def _says_json(scope: Scope) -> bool:
    """Whether the request names one JSON content type (FastAPI reads a body without one as no JSON)."""
    return sum(name == b"content-type" for name, _ in scope["headers"]) == 1 and is_json(scope)


def _bearer(scope: Scope) -> str | None:
    """The token of the one `Authorization` header, as `deps.get_identity` takes it; None otherwise."""
    found = [value for name, value in scope["headers"] if name == b"authorization"]
    return bearer_token(found[0].decode("latin-1")) if len(found) == 1 else None


async def _failed(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer as the route's exception handlers would (the one for the closest class).

    What only the catch-all (`Exception`) handles is raised on, as from the route: the server's
    error middleware answers it, outside the audit trail, and the server logs it.
    """
    handlers = scope["app"].exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers and cls is not Exception), None)
    if handler is None:
        raise exc
    request = Request(scope, receive, send)
    response = (
        await handler(request, exc)
        if inspect.iscoroutinefunction(handler)
        else await run_in_threadpool(handler, request, exc)
    )
    await response(scope, receive, send)
