"""The eval loop: the challenge type's cheap check over pending results, through the backend's API.

Each pass looks at two pages of `GET /v1/verification/pending` (results no one has ruled on, a
machine's `pending` included, a human's never), oldest first: the results recorded since the last
pass (after `newest`, at first the newest result when the service started), then the next page
of a cursor that walks all of them round and round.
A result the check cannot decide stays where it is, so undecided old results never starve new
ones: a new result is looked at in the next pass, however many old ones wait.

Each check runs in a process of its own (`collab_eval.one_check`), stopped by its PID after
`check_timeout_s`: a check that hangs or fails decides nothing, and the pass goes on. A verdict is
set with `PUT /v1/results/{id}/verdict` `{verdict, reason, expected: pending, by: eval-space}`: the
backend records it as `verifier:eval-space`, refuses it when the verdict moved since
(`VERDICT_CHANGED`), and never lets it overrule a human's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("collab_eval")
HERE = Path(__file__).resolve().parents[1]  # the folder holding collab_eval/ (the eval Space's files)
WITHHELD = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "COLLAB_EVAL_TOKEN")  # no check process ever holds a token

#: `check(request) -> {verdict, reason}` or None when the check decided nothing (it failed or timed out).
Check = Callable[[dict[str, Any]], dict[str, Any] | None]


class BackendError(Exception):
    """The backend answered with an error envelope, or not at all."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Backend:
    """JSON over HTTP to the collab's backend, as an organizer."""

    url: str
    token: str
    timeout: float = 30.0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310  # the collab's own
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                raise BackendError(str(error["code"]), str(error["message"])) from None
            except (ValueError, KeyError, TypeError):
                raise BackendError(f"HTTP {exc.code}", "no error envelope") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BackendError("UNREACHABLE", str(getattr(exc, "reason", exc))) from None


def run_in_process(timeout: float, command: list[str] | None = None) -> Check:
    """A check run by `collab_eval.one_check` (or `command`) in a child process, killed by its PID after `timeout` s."""
    argv = command or [sys.executable, "-m", "collab_eval.one_check"]
    env = {k: v for k, v in os.environ.items() if k not in WITHHELD}  # the check reads what a participant wrote
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)

    def check(request: dict[str, Any]) -> dict[str, Any] | None:
        process = subprocess.Popen(  # this Python, this package's module
            argv, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = process.communicate(json.dumps(request).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            log.warning("the cheap check of %s ran past %.0f s: stopped (pid %d)", request["id"], timeout, process.pid)
            return None
        if process.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            log.warning("the cheap check of %s failed (exit %d): %s", request["id"], process.returncode, tail[0])
            return None
        answer: dict[str, Any] = json.loads(out)
        return answer

    return check


@dataclass
class Checker:
    """The eval loop's state: where the new results start, and the cursor over the old ones."""

    backend: Backend
    spec: dict[str, Any]
    check: Check
    batch: int = 20
    newest: str | None = None  # the last result looked at among the new ones
    cursor: str | None = None  # where the walk over the old ones goes on
    passes: int = 0
    decided: int = 0
    last_error: str | None = None
    started: bool = False  # whether the first pass has set `newest`

    def one_pass(self) -> int:
        """Look at the new results, then at the next page of old ones; the verdicts set."""
        if not self.started:  # what exists at start is the old walk's; the new ones come after it
            latest = self.backend.call("GET", "/v1/results?limit=1")["items"]
            self.newest = latest[0]["id"] if latest else None
            self.started = True
        page = self._pending(self.newest)
        decided = self._decide(page["items"])
        if page["items"]:
            self.newest = page["items"][-1]["id"]
        old = self._pending(self.cursor)
        fresh = {item["id"] for item in page["items"]}
        decided += self._decide([i for i in old["items"] if i["id"] not in fresh])
        self.cursor = old["next"]  # None: round again from the oldest
        self.passes += 1
        self.decided += decided
        self.last_error = None
        return decided

    def _pending(self, after: str | None) -> dict[str, Any]:
        query = {"limit": str(self.batch), **({"after": after} if after else {})}
        page: dict[str, Any] = self.backend.call("GET", "/v1/verification/pending?" + urllib.parse.urlencode(query))
        return page

    def _decide(self, items: list[dict[str, Any]]) -> int:
        decided = 0
        for item in items:
            request = {"id": item["id"], "type": self.spec["challenge"]["type"], "spec": self.spec,
                       "filename": item["source"]["path"].rsplit("/", 1)[-1], "frontmatter": item["fields"],
                       "body": item["description"]}  # fmt: skip
            answer = self.check(request)
            if answer is None or answer.get("verdict") not in ("valid", "invalid"):
                continue  # undecided: it stays pending, and the walk goes on
            body = {"verdict": answer["verdict"], "reason": str(answer.get("reason", ""))[:500],
                    "expected": "pending", "by": "eval-space"}  # fmt: skip
            try:
                shown = self.backend.call("PUT", f"/v1/results/{item['id']}/verdict", body)
            except BackendError as exc:
                if exc.code in ("VERDICT_CHANGED", "NOT_FOUND"):
                    continue  # someone ruled meanwhile: theirs stands
                raise
            if shown.get("verdict_by") == "verifier:eval-space":
                decided += 1
        return decided
