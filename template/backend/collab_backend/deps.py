"""FastAPI dependencies: the running context and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity

MAX_TOKEN_CHARS = 512


async def get_context(request: Request) -> Context:
    """The running backend's parts (async: a plain lookup needs no worker thread)."""
    ctx: Context = request.app.state.ctx
    return ctx


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None if there is none or it is malformed."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and len(token) <= MAX_TOKEN_CHARS else None


async def get_identity(
    request: Request,
    ctx: Annotated[Context, Depends(get_context)],
    authorization: Annotated[str | None, Header(description="Bearer <HF token>")] = None,
) -> Identity:
    """The caller, from `Authorization: Bearer <token>` (checked before anything else).

    A token known without a network call (a fresh whoami, the local file) is answered on the
    event loop; any other is looked up in a worker thread, so a slow Hub never holds the loop.
    """
    token = bearer_token(authorization)
    if token is None:
        raise APIError("UNAUTHENTICATED", "send `Authorization: Bearer <your HF token>`", None)
    try:
        identity = ctx.identity.cached(token)
        if identity is None:
            identity = await run_in_threadpool(ctx.identity.identify, token)
    except APIError:
        request.state.audit_user = "(refused token)"
        raise
    request.state.audit_user = identity.user
    return identity


ContextDep = Annotated[Context, Depends(get_context)]
CurrentUser = Annotated[Identity, Depends(get_identity)]
