"""Hub mode's launcher: the harness as an HF Job in the challenge org, through huggingface_hub 2.4.

The job mounts three bucket folders and gets nothing else: the central bucket's harness folder
(read-only, `/harness`), the submission folder of the agent's own bucket (read-only,
`/submission`), and its state folder in the audit bucket (read-write, `/state`; the admin org's,
so a job never writes the central bucket: the backend publishes the summary once checked). No
environment variable and no secret is passed, so the organizers' token never enters the
container; it only authenticates the backend's own calls. The Hub enforces the timeout; the
backend cancels a job that overstays it anyway.

The Hub reports a stage, not the harness's exit status, so the command runs the harness through
`sh -c`, which writes the harness's exit status to `/state/exit_status` when it exits; `poll`
reads it back from the state folder. A run without that file was killed with its container: if
it ran to about its timeout (carried by the `collab_timeout_s` label), it timed out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from typing import Any, Protocol

from huggingface_hub import Volume
from huggingface_hub.errors import JobNotFoundError

from collab_backend.hub_failures import classify
from collab_backend.jobs.base import LauncherError, LaunchRequest, Progress, redact
from collab_backend.jobs.paths import state_folder
from collab_backend.jobs.summary import MAX_SUMMARY_BYTES
from collab_backend.storage import Add, Storage, StorageError

TERMINAL = frozenset({"COMPLETED", "CANCELED", "ERROR", "DELETED"})
MAX_MESSAGE = 500
MAX_EXIT_STATUS_BYTES = 64
TIMEOUT_LABEL = "collab_timeout_s"
TIMED_OUT_SHARE = 0.95  # a killed run that ran this share of its timeout was stopped by it
EXIT_STATUS_FILE = "exit_status"
# Runs the harness ("$0" is the Python, "$@" the script and its options: never interpolated), then
# records its exit status in the state folder and exits with it.
_WRAPPER = '"$0" "$@"; status=$?; echo "$status" > /state/' + EXIT_STATUS_FILE + '; exit "$status"'


class HubJobsClient(Protocol):
    """The huggingface_hub Jobs calls this launcher makes (`HfApi` satisfies it, and so does the test fake)."""

    def run_job(
        self,
        *,
        image: str,
        command: list[str],
        flavor: Any = None,
        timeout: int | float | str | None = None,
        labels: dict[str, str] | None = None,
        volumes: list[Volume] | None = None,
        namespace: str | None = None,
        token: bool | str | None = None,
    ) -> Any: ...

    def inspect_job(self, *, job_id: str, namespace: str | None = None, token: bool | str | None = None) -> Any: ...

    def fetch_job_logs(
        self,
        *,
        job_id: str,
        namespace: str | None = None,
        follow: bool = False,
        tail: int | None = None,
        token: bool | str | None = None,
    ) -> Iterable[str]: ...

    def cancel_job(self, *, job_id: str, namespace: str | None = None, token: bool | str | None = None) -> None: ...

    def list_jobs(
        self,
        *,
        labels: dict[str, str] | None = None,
        namespace: str | None = None,
        token: bool | str | None = None,
    ) -> Iterable[Any]: ...


def _describe(exc: Exception) -> str:
    """One line for the launcher's error, from the kit's one reading of Hub failures."""
    failure = classify(exc)
    if failure is None:  # not the Hub's failure (a bug in the call): said as it is
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        return f"the Hub call failed: {type(exc).__name__}: {text}"
    if failure.status is None:
        return f"the Hub could not be reached: {failure.detail[:200]}"
    return f"the Hub answered {failure.status}: {failure.detail[:200]}"


def _ran_to_timeout(info: Any) -> bool:
    """Whether a run the Hub ended ran for about its timeout (the label says how long that was)."""
    raw = (info.labels or {}).get(TIMEOUT_LABEL, "")
    started, finished = info.started_at, info.finished_at
    if not raw.isdecimal() or not isinstance(started, datetime) or not isinstance(finished, datetime):
        return False
    return (finished - started).total_seconds() >= int(raw) * TIMED_OUT_SHARE


class HubLauncher:
    """Runs the harness as HF Jobs in the challenge org; handles are Hub job ids."""

    kind = "hub"
    stand_in = False

    def __init__(
        self,
        api: HubJobsClient,
        storage: Storage,
        *,
        token: str | None,
        namespace: str,
        image: str,
        flavor: str,
        state_bucket: str,
        python: str = "python3",
    ) -> None:
        self.api, self.storage, self.token, self.namespace = api, storage, token, namespace
        self.image, self.flavor, self.state_bucket, self.python = image, flavor, state_bucket, python

    def volumes(self, request: LaunchRequest) -> list[Volume]:
        """The three mounts: harness and submission read-only, the state folder read-write."""
        return [
            Volume(type="bucket", source=request.central_bucket, path=request.harness_prefix.rstrip("/"),
                   mount_path="/harness", read_only=True),
            Volume(type="bucket", source=request.submission_bucket, path=request.submission_path,
                   mount_path="/submission", read_only=True),
            Volume(type="bucket", source=self.state_bucket, path=state_folder(request.job_id), mount_path="/state",
                   read_only=False),
        ]  # fmt: skip

    def command(self, request: LaunchRequest) -> list[str]:
        return ["sh", "-c", _WRAPPER, self.python, f"/harness/{request.entrypoint}", "--submission-dir",
                "/submission", "--state-dir", "/state", *request.options]  # fmt: skip

    def launch(self, request: LaunchRequest) -> str:
        # A mounted folder must hold a file, or the job fails to start.
        try:
            self.storage.batch(self.state_bucket, [Add(state_folder(request.job_id) + "/.keep", b"")])
        except StorageError as exc:
            raise LauncherError(f"could not prepare the job's state folder: {exc}") from None
        try:
            info = self.api.run_job(
                image=self.image, command=self.command(request), flavor=self.flavor, timeout=request.timeout_s,
                labels={**request.labels, TIMEOUT_LABEL: str(request.timeout_s)}, volumes=self.volumes(request),
                namespace=self.namespace, token=self.token,
            )  # fmt: skip
        except Exception as exc:  # any failure of the client (HTTP, transport, validation)
            raise LauncherError(_describe(exc)) from None
        return str(info.id)

    def poll(self, job_id: str, handle: str) -> Progress:
        try:
            info = self.api.inspect_job(job_id=handle, namespace=self.namespace, token=self.token)
        except JobNotFoundError:
            return Progress("lost", message="the Hub does not know the job", started=False)
        except Exception as exc:
            raise LauncherError(_describe(exc)) from None
        status = info.status
        stage = str(getattr(status.stage, "value", status.stage))
        message = (status.message or "")[:MAX_MESSAGE]
        if stage not in TERMINAL:
            return Progress("running" if stage == "RUNNING" else "queued", stage=stage, message=message)
        summary, problem = self._summary(job_id)
        code = self._exit_status(job_id)
        started = info.started_at is not None
        timed_out = code is None and started and _ran_to_timeout(info)
        return Progress(
            "ended", stage=stage, message=message, exit_code=code, timed_out=timed_out,
            canceled=stage in ("CANCELED", "DELETED"), started=started, summary=summary, summary_error=problem,
        )  # fmt: skip

    def _exit_status(self, job_id: str) -> int | None:
        """The harness's exit status, as the command's wrapper wrote it; None when it did not."""
        path = f"{state_folder(job_id)}/{EXIT_STATUS_FILE}"
        try:
            info = self.storage.stat(self.state_bucket, [path]).get(path)
            if info is None or info.size > MAX_EXIT_STATUS_BYTES:
                return None
            text = self.storage.read(self.state_bucket, path).decode("ascii", "replace").strip()
        except StorageError as exc:
            raise LauncherError(f"could not read the job's exit status: {exc}") from None
        return int(text) if text.isdecimal() and len(text) <= 3 else None

    def _summary(self, job_id: str) -> tuple[bytes | None, str]:
        path = state_folder(job_id) + "/summary.json"
        try:
            info = self.storage.stat(self.state_bucket, [path]).get(path)
            if info is None:
                return None, ""
            if info.size > MAX_SUMMARY_BYTES:
                return None, f"summary.json is larger than {MAX_SUMMARY_BYTES} bytes"
            return self.storage.read(self.state_bucket, path), ""
        except StorageError as exc:
            raise LauncherError(f"could not read the job's summary: {exc}") from None

    def logs(self, handle: str, tail: int) -> list[str]:
        try:
            lines = self.api.fetch_job_logs(job_id=handle, namespace=self.namespace, tail=tail, token=self.token)
            return [redact(str(line)) for line in islice(lines, tail)]
        except JobNotFoundError:
            return []
        except Exception as exc:
            raise LauncherError(_describe(exc)) from None

    def cancel(self, handle: str) -> None:
        try:
            self.api.cancel_job(job_id=handle, namespace=self.namespace, token=self.token)
        except JobNotFoundError:
            return
        except Exception as exc:
            raise LauncherError(_describe(exc)) from None

    def find(self, job_id: str) -> str | None:
        try:
            for info in self.api.list_jobs(labels={"collab_job": job_id}, namespace=self.namespace, token=self.token):
                return str(info.id)
        except Exception as exc:
            raise LauncherError(_describe(exc)) from None
        return None

    def release(self, handle: str) -> None:
        return None  # the state folder stays in the audit bucket for the organizers

    def close(self) -> list[str]:
        return []  # Hub jobs run on; the next start of the backend picks them up again
