"""Hub mode's launcher: the harness as an HF Job in the challenge org, through huggingface_hub 2.4.

The job mounts three bucket folders and gets nothing else: the central bucket's harness folder
(read-only, `/harness`), the submission folder of the agent's own bucket (read-only,
`/submission`), and its state folder in the audit bucket (read-write, `/state`; the admin org's,
so a job never writes the central bucket: the backend publishes the summary once checked). No
environment variable and no secret is passed, so the organizers' token never enters the
container; it only authenticates the backend's own calls. The Hub enforces the timeout; the
backend cancels a job that overstays it anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any, Protocol

from huggingface_hub import Volume
from huggingface_hub.errors import HfHubHTTPError, JobNotFoundError

from collab_backend.jobs.base import LauncherError, LaunchRequest, Progress, redact
from collab_backend.jobs.paths import state_folder
from collab_backend.jobs.summary import MAX_SUMMARY_BYTES
from collab_backend.storage import Add, Storage, StorageError

TERMINAL = frozenset({"COMPLETED", "CANCELED", "ERROR", "DELETED"})
MAX_MESSAGE = 500


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
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return f"the Hub answered {status}: {text}" if status else f"the Hub could not be reached: {text}"


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
        return [self.python, f"/harness/{request.entrypoint}", "--submission-dir", "/submission",
                "--state-dir", "/state", *request.options]  # fmt: skip

    def launch(self, request: LaunchRequest) -> str:
        # A mounted folder must hold a file, or the job fails to start.
        try:
            self.storage.batch(self.state_bucket, [Add(state_folder(request.job_id) + "/.keep", b"")])
        except StorageError as exc:
            raise LauncherError(f"could not prepare the job's state folder: {exc}") from None
        try:
            info = self.api.run_job(
                image=self.image, command=self.command(request), flavor=self.flavor, timeout=request.timeout_s,
                labels=request.labels, volumes=self.volumes(request), namespace=self.namespace, token=self.token,
            )  # fmt: skip
        except (HfHubHTTPError, OSError, ValueError) as exc:
            raise LauncherError(_describe(exc)) from None
        return str(info.id)

    def poll(self, job_id: str, handle: str) -> Progress:
        try:
            info = self.api.inspect_job(job_id=handle, namespace=self.namespace, token=self.token)
        except JobNotFoundError:
            return Progress("lost", message="the Hub does not know the job", started=False)
        except (HfHubHTTPError, OSError) as exc:
            raise LauncherError(_describe(exc)) from None
        status = info.status
        stage = str(getattr(status.stage, "value", status.stage))
        message = (status.message or "")[:MAX_MESSAGE]
        if stage not in TERMINAL:
            return Progress("running" if stage == "RUNNING" else "queued", stage=stage, message=message)
        summary, problem = self._summary(job_id)
        return Progress(
            "ended", stage=stage, message=message, canceled=stage in ("CANCELED", "DELETED"),
            started=info.started_at is not None, summary=summary, summary_error=problem,
        )  # fmt: skip

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
        except (HfHubHTTPError, OSError) as exc:
            raise LauncherError(_describe(exc)) from None

    def cancel(self, handle: str) -> None:
        try:
            self.api.cancel_job(job_id=handle, namespace=self.namespace, token=self.token)
        except JobNotFoundError:
            return
        except (HfHubHTTPError, OSError) as exc:
            raise LauncherError(_describe(exc)) from None

    def find(self, job_id: str) -> str | None:
        try:
            for info in self.api.list_jobs(labels={"collab_job": job_id}, namespace=self.namespace, token=self.token):
                return str(info.id)
        except (HfHubHTTPError, OSError) as exc:
            raise LauncherError(_describe(exc)) from None
        return None

    def release(self, handle: str) -> None:
        return None  # the state folder stays in the audit bucket for the organizers

    def close(self) -> list[str]:
        return []  # Hub jobs run on; the next start of the backend picks them up again
