"""Apply a plan: make exactly its changes, in its order, then wait for the Spaces it touched.

Invariants: a blocked plan is refused; every resource is marked as this collab's in the same call
that creates it (a Space's marker variable rides in `create_repo`) or in the step right after (a
bucket's `.collab/deployment.json`); nothing is ever deleted except files of a marked Space's code
that its source no longer has. Apply keeps no state: when a step fails, the error names it, and
the next plan reads what was done from the Hub, so the next apply finishes the rest.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import ProvisionError
from provision.hub.client import HubAccessError, HubClient, hub_errors
from provision.naming import BUCKET_MARKER_PATH, MARKER_KEY, TOOL
from provision.plan.compute import Action, Change, Plan
from provision.plan.desired import IGNORED_SOURCES, SPACE_SDK, Desired, DesiredSpace
from provision.plan.seed import apply_seed

INTERMEDIATE_STAGES = frozenset({"BUILDING", "RUNNING_BUILDING", "APP_STARTING", "RUNNING_APP_STARTING"})
FAILED_STAGES = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"})
LOG_TAIL_LINES = 20

Progress = Callable[[str], None]


class ApplyError(ProvisionError):
    """A step of apply failed; what was done before it stays done, and the next apply resumes."""


class SpaceFailedError(ApplyError):
    """A Space did not reach RUNNING: its build failed, or it timed out."""


@dataclass(frozen=True)
class WaitPolicy:
    """How long to wait for a Space to run, and the clock to do it with (tests inject both)."""

    timeout: float = 900.0
    interval: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)


def apply_plan(
    hub: HubClient,
    token: str,
    plan: Plan,
    desired: Desired,
    *,
    progress: Progress = print,
    wait: WaitPolicy | None = None,
) -> int:
    """Make the plan's changes.

    Args:
        hub: The Hub client.
        token: The token's value: sent with each call and stored as the Spaces' secret.
        plan: What `compute_plan` returned for `desired`.
        desired: The desired state the plan was computed from.
        progress: Receives one line per step.
        wait: How to wait for Spaces to run.

    Returns:
        The number of changes made.

    Raises:
        ApplyError: when the plan is blocked or a step fails (the message names the step and the fix).
    """
    if plan.blockers:
        raise ApplyError("the plan is blocked: " + "; ".join(b.message for b in plan.blockers))
    spaces = {s.address: s for s in desired.spaces}
    done = 0
    for action in plan.pending:
        progress(f"{action.address} ({action.id}): {action.action}")
        for change in action.changes:
            try:
                if action.resource == "bucket":
                    _bucket_step(hub, token, action, change, desired.collab)
                elif action.resource == "seed":
                    if desired.seed is None:
                        raise ValueError(f"{action.address} planned without a seed in the desired state")
                    apply_seed(hub, token, action.address, desired.seed, change.field, change.after)
                else:
                    _space_step(hub, token, spaces[action.address], change, desired.marker)
            except HubAccessError as exc:
                raise ApplyError(
                    f"{action.address}: {change.field}: {exc}\n"
                    f"    {done} change(s) were made before this one; run `collab apply` again to finish"
                ) from exc
            done += 1
            progress(f"  {change.field}: done")
        if action.resource == "space":
            runtime_stage = wait_until_running(hub, token, action.id, wait or WaitPolicy(), progress)
            progress(f"  stage: {runtime_stage}")
    return done


def _bucket_step(hub: HubClient, token: str, action: Action, change: Change, collab: str) -> None:
    bucket_id = action.id
    if change.field == "bucket":
        private = next(c.after for c in action.changes if c.field == "visibility") == "private"
        with hub_errors(f"create bucket {bucket_id}"):
            hub.create_bucket(bucket_id, private=private, token=token)
    elif change.field == "visibility":
        if action.action == "create":
            return  # create_bucket set it
        with hub_errors(f"change the visibility of bucket {bucket_id}"):
            hub.update_bucket_settings(bucket_id, private=change.after == "private", token=token)
    elif change.field == "marker":
        mark = json.dumps({"managed_by": TOOL, "collab": collab}, indent=2).encode() + b"\n"
        with hub_errors(f"write {BUCKET_MARKER_PATH} in bucket {bucket_id}"):
            hub.batch_bucket_files(bucket_id, add=[(mark, BUCKET_MARKER_PATH)], token=token)
    else:
        raise ValueError(f"unknown bucket change {change.field!r}")


def _space_step(hub: HubClient, token: str, space: DesiredSpace, change: Change, marker: str) -> None:
    what = f"{change.field} of Space {space.id}"
    with hub_errors(f"set the {what}"):
        if change.field == "space":
            hub.create_repo(
                space.id,
                repo_type="space",
                space_sdk=SPACE_SDK,
                private=space.private,
                space_variables=[{"key": MARKER_KEY, "value": marker}],
                token=token,
            )
        elif change.field == "visibility":
            if change.before is not None:  # a new Space got it from create_repo
                hub.update_repo_settings(space.id, private=space.private, repo_type="space", token=token)
        elif change.field.startswith("variable "):
            hub.add_space_variable(space.id, change.field.removeprefix("variable "), str(change.after), token=token)
        elif change.field.startswith("secret "):
            # The only value the token is ever sent as: a write-only Space secret.
            hub.add_space_secret(space.id, change.field.removeprefix("secret "), token, token=token)
        elif change.field == "hardware":
            hub.request_space_hardware(space.id, change.after, token=token)
        elif change.field == "sleep_time":
            hub.set_space_sleep_time(space.id, int(change.after), token=token)
        elif change.field == "code":
            with _staged(space) as folder:
                hub.upload_folder(
                    repo_id=space.id,
                    repo_type="space",
                    folder_path=folder,
                    commit_message=f"Deploy {space.name} with collab apply",
                    ignore_patterns=list(IGNORED_SOURCES),
                    delete_patterns=list(change.after["delete"]) or None,
                    token=token,
                )
        elif change.field == "restart":
            hub.restart_space(space.id, token=token)
        else:
            raise ValueError(f"unknown Space change {change.field!r}")


@contextlib.contextmanager
def _staged(space: DesiredSpace) -> Iterator[Path]:
    """The folder to upload: the Space's source, or a copy of it with the collab's bundled folders beside it."""
    if not space.bundled:
        yield space.source_dir
        return
    ignore = shutil.ignore_patterns(".git", *IGNORED_SOURCES)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / space.name
        shutil.copytree(space.source_dir, staged, ignore=ignore)
        for folder in space.bundled:
            shutil.copytree(space.source_dir.parent / folder, staged / folder, ignore=ignore)
        yield staged


def wait_until_running(hub: HubClient, token: str, space_id: str, wait: WaitPolicy, progress: Progress) -> str:
    """Poll a Space's runtime until it leaves the building stages.

    Returns:
        The stage it settled in (RUNNING, or a stage such as SLEEPING or PAUSED that is not a failure).

    Raises:
        SpaceFailedError: on a failed stage (with the build log's tail) or after `wait.timeout` seconds.
    """
    deadline = wait.clock() + wait.timeout
    last = None
    while True:
        with hub_errors(f"read the runtime of Space {space_id}"):
            stage = str(hub.get_space_runtime(space_id, token=token).stage)
        if stage != last and stage in INTERMEDIATE_STAGES:
            progress(f"  waiting: {stage}")
        last = stage
        if stage in FAILED_STAGES:
            raise SpaceFailedError(
                f"Space {space_id} is {stage}; the build log ends with:\n{_log_tail(hub, token, space_id)}\n"
                "    hint: fix the cause (the Space's code is the collab's folder of the same name), "
                "then run `collab apply` again: it restarts the Space"
            )
        if stage not in INTERMEDIATE_STAGES:
            return stage
        if wait.clock() >= deadline:
            raise SpaceFailedError(
                f"Space {space_id} still {stage} after {wait.timeout:.0f} s; the build log ends with:\n"
                f"{_log_tail(hub, token, space_id)}\n"
                "    hint: run `collab status` to follow it, or `collab apply` again to keep waiting"
            )
        wait.sleep(wait.interval)


def _log_tail(hub: HubClient, token: str, space_id: str) -> str:
    try:
        with hub_errors(f"read the build log of Space {space_id}"):
            lines = [line.rstrip("\n") for line in hub.fetch_space_logs(space_id, build=True, token=token)]
    except HubAccessError as exc:
        return f"      (the build log could not be read: {str(exc).splitlines()[0]})"
    return "\n".join(f"      | {line}" for line in lines[-LOG_TAIL_LINES:]) or "      (the build log is empty)"
