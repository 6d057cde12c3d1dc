"""The board's hot write and read, `POST /v1/messages` and `GET /v1/digest/{agent_id}`, served before FastAPI routes.

Measured under a burst of posts (`bench/backend.py`: raw posts over 16 connections, the digest
read meanwhile), FastAPI's handling of a post (routing, solving its dependencies, validating the
body, rendering the answer) took about a third of the event loop's time for it, and reads waited
behind the queue of posts; for a digest, it took longer than drawing the digest. `HotPaths`
serves the common cases itself:

- a post whose JSON body the route's own model (`MessageCreate`) accepts, from a caller whose
  token is known without a network call. It checks the token as `deps.get_identity` does, calls
  the same services (`board.post_raw`, `board.post_human`), answers the same body
  (`message_json`, 201), and leaves the audit trail what the route leaves it;
- a digest asked with at most `since` and `limit`, in the forms the route takes without
  converting them (`limit` in plain digits). It draws the same document
  (`routes.digest.view`).

A failure becomes the answer the app's own exception handlers give. Everything else goes on to
the FastAPI routes, which stay the documented operations: a body the model refuses (the route
words the error), a token only the Hub can check (looked up in a worker thread there), a
malformed `Authorization`, a query the route reads otherwise, another path or method.
`tests/test_hot_path.py` sends the same requests to the app with and without it and compares
the answers.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import MutableMapping
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.routing import BaseRoute

from collab_backend.deps import bearer_token
from collab_backend.errors import APIError
from collab_backend.middleware import ASGIApp, Message, Receive, Scope, Send, is_json
from collab_backend.models import Json, MessageCreate, message_json
from collab_backend.routes import digest
from collab_backend.services import board

PATH = "/v1/messages"
DIGEST = "/v1/digest/"
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")  # a `limit` in plain digits, as the route would read it


class HotPaths:
    """Serve a post and a digest when they need nothing FastAPI adds; hand every other request on."""

    def __init__(self, app: ASGIApp, route: BaseRoute | None = None) -> None:
        self.app, self.route = app, route  # `route`: the post's FastAPI route, named in the audit trail as it would be

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH and _says_json(scope):
            await self._post(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(DIGEST):
            await self._digest(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _digest(self, scope: Scope, receive: Receive, send: Send) -> None:
        agent, asked = scope["path"][len(DIGEST) :], _digest_query(scope)
        if not agent or "/" in agent or scope.get("root_path") or asked is None:
            await self.app(scope, receive, send)  # the route matches it, or words what is wrong with it
            return
        try:
            document = await digest.view(scope["app"].state.ctx, agent, *asked)
        except Exception as exc:
            await _failed(scope, receive, send, exc)
            return
        await Json(document)(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
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


def _digest_query(scope: Scope) -> tuple[str | None, int] | None:
    """`since` and `limit` as the digest's route would take them; None for any other query (the route reads it)."""
    found = QueryParams(scope["query_string"])  # parsed as the route's request parses it (a name twice: the last)
    if not found.keys() <= {"since", "limit"}:
        return None
    since, limit = found.get("since"), found.get("limit", str(digest.DEFAULT_LIMIT))
    if (since is not None and len(since) > digest.MAX_SINCE) or not _LIMIT.fullmatch(limit):
        return None
    return (since, int(limit)) if int(limit) <= digest.MAX_LIMIT else None


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
