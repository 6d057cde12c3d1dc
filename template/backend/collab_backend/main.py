"""The ASGI app: wiring, lifespan, the guards every request passes (middleware.py), and the routers.

`create_app(ctx)` serves a prepared context (tests, local mode); `app` reads its settings from
the environment (the Space).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from huggingface_hub import HfApi

from collab_backend import __version__, errors
from collab_backend.audit import AuditLog
from collab_backend.config import Settings
from collab_backend.context import Context
from collab_backend.hot_path import HotPaths, route_of
from collab_backend.hub_failures import install_timeouts
from collab_backend.identity import HubIdentity, IdentityProvider, LocalIdentity
from collab_backend.jobs.base import Launcher, Runs
from collab_backend.jobs.hub import HubLauncher
from collab_backend.jobs.local import LocalLauncher
from collab_backend.limits import Limits, replay
from collab_backend.middleware import AuditTrail, BodyLimit, JsonGuard
from collab_backend.openapi import document_errors
from collab_backend.record.store import Record
from collab_backend.routes import (
    agents,
    board,
    browse,
    credit,
    digest,
    directions,
    files,
    jobs,
    meta,
    pages,
    profiles,
    results,
    rulings,
    run_requests,
    usage,
)
from collab_backend.server import short_full_collections
from collab_backend.services.board import ensure_spec_channels
from collab_backend.services.directions import ensure_spec_directions
from collab_backend.services.job_endings import JobMonitor
from collab_backend.services.results import IndexWatcher
from collab_backend.services.verifier import Verifier
from collab_backend.storage import Storage
from collab_backend.storage.hub import HubStorage
from collab_backend.storage.local import LocalStorage

# How long a thread holds the GIL while another waits for it (CPython's default: 5 ms). The record's
# writer releases it at each file operation of a commit, and taking it back from the event loop
# then cost up to the whole interval each time: commits, and every write waiting on them, slowed
# to a crawl under concurrent requests. A shorter interval hands it back sooner.
SWITCH_INTERVAL = 0.0005


def build_context(settings: Settings) -> Context:
    """Wire storage, identity and the record from settings."""
    storage: Storage
    identity: IdentityProvider
    api = HfApi(token=settings.hf_token)
    if settings.storage == "hub":
        install_timeouts(settings.hub_connect_timeout_s, settings.hub_read_timeout_s)  # no wait on the Hub is endless
        storage, identity = HubStorage(api, token=settings.hf_token), HubIdentity(api)
    else:
        if settings.local_root is None or settings.identity_file is None:  # Settings refuses this already
            raise ValueError("local mode needs COLLAB_LOCAL_ROOT and COLLAB_IDENTITY_FILE")
        # No file a service accepts is larger than these, so none larger is ever read to hash it.
        bound = max(settings.spec.storage.max_file_bytes, settings.spec.board.max_message_bytes)
        storage = LocalStorage(settings.local_root, max_hashed_bytes=bound, writer_process=True)
        identity = LocalIdentity(settings.identity_file)
    spec = settings.spec
    record = Record(storage, spec.storage.central_bucket)
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
    runs = Runs(poll_interval=settings.jobs_poll_s, rehearsal=settings.verify_rehearsal and launcher is not None)
    return Context(
        spec, storage, record, identity, Limits.from_spec(spec), audit=audit, launcher=launcher, runs=runs,
        submission_config=settings.submission_config, job_args=settings.jobs_args, denylist=settings.denylist,
    )  # fmt: skip


def create_app(ctx: Context | None = None, *, manage_record: bool = True, hot_path: bool = True) -> FastAPI:
    """The API over a context (built from the environment when omitted).

    `hot_path`: serve a post and a digest before FastAPI's routing when it can (`hot_path.py`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sys.setswitchinterval(SWITCH_INTERVAL)
        undo_collections: Callable[[], None] | None = None
        from_environment = app.state.ctx is None
        if from_environment:
            app.state.ctx = build_context(Settings())  # read from the environment
        ctx = app.state.ctx
        if manage_record:
            ctx.record.open()
            ensure_spec_channels(ctx)
            ensure_spec_directions(ctx)
            replay(ctx.limits, ctx.record.state, ctx.record.clock())
        if ctx.audit is not None:
            ctx.audit.start()
        monitor, verifier, index = JobMonitor(ctx), Verifier(ctx), IndexWatcher(ctx)
        monitor.start()
        verifier.start()
        index.start()
        if from_environment:  # the server process: its collector policy is its own
            undo_collections = short_full_collections()
        try:
            yield
        finally:
            index.stop()
            verifier.stop()
            monitor.stop()  # records what ended, stops the local runs still going (by PID) and refunds them
            if ctx.audit is not None:
                ctx.audit.stop()
            if manage_record:
                ctx.record.close()
            if isinstance(ctx.storage, LocalStorage):
                ctx.storage.close()  # its writer process, by PID
            if undo_collections is not None:
                undo_collections()

    app = FastAPI(
        # The backend exports no OpenTelemetry: FastAPI's own hooks looked up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="Agent collab API",
        version=__version__,
        description="The coordination API of an agent collab: sole writer of the shared record.",
        lifespan=lifespan,
        docs_url=None,  # routes/pages.py serves /docs from installed files, not a CDN
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    # Matched in this order: the board and the digest, most of the traffic, first.
    routers = (board, digest, meta, agents, profiles, results, rulings, files, usage, jobs, run_requests, browse, pages)
    for module in (*routers, credit, directions):
        app.include_router(module.router)
    app.mount(pages.ASSETS, StaticFiles(directory=pages.ASSETS_DIR), name="docs-assets")
    # Added innermost first: the audit trail sees every answer, the size and JSON guards' included.
    if hot_path:
        app.add_middleware(HotPaths, route=route_of(board.router.routes))
    app.add_middleware(JsonGuard)
    # JSON escaping can make a body up to a few times its text; the text itself is capped later.
    app.add_middleware(BodyLimit, limit=lambda: 4 * app.state.ctx.spec.board.max_message_bytes + 16_384)
    app.add_middleware(AuditTrail, audit=lambda: app.state.ctx.audit)
    document_errors(app)
    return app


app = create_app()
