"""The ASGI app: wiring, lifespan, the request-size guard, and the routers.

`create_app(ctx)` serves a prepared context (tests, local mode); `app` reads its settings from
the environment (the Space).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from huggingface_hub import HfApi

from collab_backend import __version__, errors
from collab_backend.audit import AuditLog
from collab_backend.config import Settings
from collab_backend.context import Context, Limits
from collab_backend.identity import HubIdentity, IdentityProvider, LocalIdentity
from collab_backend.jobs.base import Launcher, Runs
from collab_backend.jobs.hub import HubLauncher
from collab_backend.jobs.local import LocalLauncher
from collab_backend.limits import replay
from collab_backend.record.store import Record
from collab_backend.routes import agents, board, browse, digest, files, jobs, meta, profiles, results, usage
from collab_backend.services.board import ensure_spec_channels
from collab_backend.services.job_endings import JobMonitor
from collab_backend.storage import Storage
from collab_backend.storage.hub import HubStorage
from collab_backend.storage.local import LocalStorage

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over `limit` bytes, by header and while streaming, with the envelope."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app, self._limit = app, limit

    @property
    def limit(self) -> int:
        return self._limit()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
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
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(errors.envelope("BODY_TOO_LARGE", f"request bodies are limited to {self.limit} bytes", None))
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


class AuditTrail:
    """Record every write request (POST, PUT, DELETE) and its outcome in the audit log."""

    def __init__(self, app: ASGIApp, audit: Callable[[], AuditLog | None]) -> None:
        self.app, self.audit = app, audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            log = self.audit()
            if log is not None:
                state = scope.get("state") or {}
                log.record(
                    method=scope["method"], path=scope["path"], status=status,
                    accepted=200 <= status < 300, code=state.get("error_code"), user=state.get("audit_user"),
                )  # fmt: skip


def build_context(settings: Settings) -> Context:
    """Wire storage, identity and the record from settings."""
    storage: Storage
    identity: IdentityProvider
    api = HfApi(token=settings.hf_token)
    if settings.storage == "hub":
        storage, identity = HubStorage(api, token=settings.hf_token), HubIdentity(api)
    else:
        if settings.local_root is None or settings.identity_file is None:  # Settings refuses this already
            raise ValueError("local mode needs COLLAB_LOCAL_ROOT and COLLAB_IDENTITY_FILE")
        storage, identity = LocalStorage(settings.local_root), LocalIdentity(settings.identity_file)
    spec = settings.spec
    record = Record(storage, spec.storage.central_bucket, commit_interval=settings.commit_interval_ms / 1000)
    audit = AuditLog(storage, spec.storage.audit_bucket)
    launcher: Launcher | None = None
    if spec.jobs.enabled and settings.jobs_mode == "hub":
        launcher = HubLauncher(
            api, storage, token=settings.hf_token, namespace=spec.challenge.org, image=spec.jobs.image,
            flavor=spec.jobs.flavor, state_bucket=spec.storage.audit_bucket,
        )  # fmt: skip
    elif spec.jobs.enabled and settings.jobs_mode == "local":
        launcher = LocalLauncher(
            storage, workdir=settings.jobs_dir, cpu_args=settings.jobs_cpu_args, max_running=settings.jobs_max_running
        )
    runs = Runs(poll_interval=settings.jobs_poll_s)
    return Context(spec, storage, record, identity, Limits.from_spec(spec), audit=audit, launcher=launcher, runs=runs)


def create_app(ctx: Context | None = None, *, manage_record: bool = True) -> FastAPI:
    """The API over a context (built from the environment when omitted)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.ctx is None:
            app.state.ctx = build_context(Settings())  # read from the environment
        ctx = app.state.ctx
        if manage_record:
            ctx.record.open()
            ensure_spec_channels(ctx)
            replay(ctx.limits, ctx.record.state, ctx.record.clock())
        if ctx.audit is not None:
            ctx.audit.start()
        monitor = JobMonitor(ctx)
        monitor.start()
        try:
            yield
        finally:
            monitor.stop()  # records what ended, stops the local runs still going (by PID) and refunds them
            if ctx.audit is not None:
                ctx.audit.stop()
            if manage_record:
                ctx.record.close()

    app = FastAPI(
        title="Agent collab API",
        version=__version__,
        description="The coordination API of an agent collab: sole writer of the shared record.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (meta, agents, profiles, board, digest, results, files, usage, jobs, browse):
        app.include_router(module.router)
    # JSON escaping can make a body up to a few times its text; the text itself is capped later.
    app.add_middleware(AuditTrail, audit=lambda: app.state.ctx.audit)
    app.add_middleware(BodyLimit, limit=lambda: 4 * app.state.ctx.spec.board.max_message_bytes + 16_384)
    return app


app = create_app()
