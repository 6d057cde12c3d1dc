"""The eval service's app: `/healthz`, and the eval loop in a thread beside it (`collab_eval.checker`).

A Space must serve HTTP, so the service is a small ASGI app: `GET /healthz` answers 200 with the
loop's counters while the loop runs (503 once it stopped). The loop passes every `eval_poll_s`
seconds; a pass that fails (the backend unreachable, say) is logged and kept as `last_error`,
and the next pass tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from collab_eval.checker import Backend, Checker, run_in_process
from collab_eval.config import Settings

log = logging.getLogger("collab_eval")


class Loop:
    """Runs `checker.one_pass` every `interval` seconds in one thread until stopped."""

    def __init__(self, checker: Checker, interval: float) -> None:
        self.checker, self.interval = checker, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eval", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.checker.one_pass()
            except Exception as exc:  # one failed pass must not stop the service
                self.checker.last_error = str(exc)[:300]
                log.warning("eval pass failed: %s", exc)
            if self._stop.wait(self.interval):
                return

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = settings or Settings()  # read from the environment
        checker = Checker(Backend(current.backend, current.token), current.spec,
                          run_in_process(current.check_timeout_s), batch=current.eval_batch)  # fmt: skip
        app.state.loop = Loop(checker, current.eval_poll_s)
        app.state.loop.start()
        try:
            yield
        finally:
            app.state.loop.stop()

    app = FastAPI(title="Agent collab eval service", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz", response_model=None)
    def healthz() -> dict[str, Any] | JSONResponse:
        loop: Loop = app.state.loop
        checker = loop.checker
        state = {"passes": checker.passes, "decided": checker.decided, "last_error": checker.last_error}
        if not loop.running():
            return JSONResponse({"ok": False, **state}, status_code=503)
        return {"ok": True, **state}

    return app


app = create_app()
