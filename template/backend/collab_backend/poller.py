"""A background thread that does one thing every few seconds until the backend stops.

The job monitor, the verifier and the verification index's watcher are each one: a subclass says
whether it runs (`enabled`), how often (`interval`) and what it does each time (`tick`). A tick
that raises is logged, and the next one comes as usual: one bad round never stops the thread.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("collab_backend")


class Poller:
    """Runs `tick` every `interval()` seconds from one daemon thread, between `start` and `stop`."""

    name = "poller"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def enabled(self) -> bool:
        return True

    def interval(self) -> float:
        raise NotImplementedError

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if not self.enabled():
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval()):
            try:
                self.tick()
            except Exception:  # one bad round must not stop the thread
                log.exception("%s: a round failed", self.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
