"""A run's fingerprint: what was run, computed by the backend, never typed by an agent.

The fingerprint is `sha256:` and the hex SHA-256 of one canonical JSON document (keys sorted,
no spaces, UTF-8):

    {"v": 1, "type": <challenge.type>, "image": <jobs.image>, "flavor": <jobs.flavor>,
     "stand_in": <whether a CPU stand-in ran it>,
     "harness": [[path below the harness folder, file hash], ...],
     "submission": [[path below the submission folder, file hash], ...]}

with both file lists sorted by path. The file hash is the one the storage reports (SHA-256 of the
content in local mode, the Xet hash on the Hub), so fingerprints compare within one collab. The
harness folder holds the type's evaluator, data and configuration, so its hashes are the type's
config digest. Two results with one fingerprint ran the same files through the same harness on
the same image and flavor: the same configuration.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from collab_backend.context import Context
from collab_backend.record.state import State
from collab_backend.spec import Scoring
from collab_backend.storage import FileInfo

VERSION = 1


def _files(infos: Iterable[FileInfo], folder: str) -> list[list[str]]:
    prefix = folder if folder.endswith("/") else folder + "/"
    return sorted([f.path.removeprefix(prefix), f.hash] for f in infos)


def fingerprint(ctx: Context, submission: Iterable[FileInfo], folder: str, harness: Iterable[FileInfo]) -> str:
    """The fingerprint of running `submission` (files under `folder`) with `harness` in this collab."""
    spec = ctx.spec
    doc = {
        "v": VERSION,
        "type": spec.challenge.type,
        "image": spec.jobs.image,
        "flavor": spec.jobs.flavor,
        "stand_in": bool(ctx.launcher is not None and ctx.launcher.stand_in),
        "harness": _files(harness, spec.jobs.harness_prefix),
        "submission": _files(submission, folder),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def harness_files(ctx: Context) -> list[FileInfo]:
    """The harness folder's files in the central bucket (the organizers' folder: every page)."""
    prefix = ctx.spec.jobs.harness_prefix
    folder = prefix if prefix.endswith("/") else prefix + "/"
    found: list[FileInfo] = []
    cursor = None
    while True:
        page = ctx.storage.list(ctx.central, folder, cursor=cursor)
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


MAX_SAID = 3  # earlier results a launch's warning names


def already_measured(state: State, run_fingerprint: str | None, scoring: Scoring) -> list[dict[str, Any]]:
    """Warnings for a launch whose fingerprint results already carry: by whom, which result, what it measured.

    Not a refusal: a re-run may be wanted (noise, a reproduction), but the agent learns before the
    job is spent. O(results): a launch is rare next to reads.
    """
    if run_fingerprint is None:
        return []
    found = [r for r in list(state.results.values()) if r.fingerprint == run_fingerprint]
    if not found:
        return []
    unit = f" {scoring.unit}" if scoring.unit else ""
    named = ", ".join(f"{r.id} by {r.agent} ({scoring.score_field} {r.score:g}{unit}, {r.basis}"
                      f"{', negative' if r.status == 'negative' else ''})" for r in found[:MAX_SAID])  # fmt: skip
    more = f" and {len(found) - MAX_SAID} more" if len(found) > MAX_SAID else ""
    hint = "the job runs anyway; build on the earlier result (name it in `parents`) unless you mean to reproduce it"
    said = [{"result_id": r.id, "agent": r.agent, "score": r.score, "basis": r.basis} for r in found[:MAX_SAID]]
    message = f"this submission's fingerprint was already measured: {named}{more}"
    return [{"code": "ALREADY_MEASURED", "message": message, "hint": hint, "results": said}]
