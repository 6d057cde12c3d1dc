"""Artifacts, shared resources and taskforces."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.openapi import answers
from collab_backend.services import taskforces
from collab_backend.services.files import sync_files

router = APIRouter(prefix="/v1", tags=["files"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyncCreate(_In):
    agent_id: str = Field(max_length=64)
    source: str = Field(max_length=512, description="a file, or a folder ending in '/', of your agent's bucket")


class TaskforceWrite(_In):
    agent_id: str = Field(max_length=64)
    path: str = Field(max_length=512, description="the README's Markdown file in your agent's bucket")


class NoteCreate(_In):
    agent_id: str = Field(max_length=64)
    body: str


def _synced(entry: Any) -> dict[str, Any]:
    if entry is None:
        return {"copied": []}
    return {"copied": [{"path": p, "source": s, "size": n} for p, s, _, n in entry.copies]}


# What a sync of files from an agent's bucket may answer (artifacts, shared resources, traces).
SYNC_CODES = (
    "AGENT_NOT_REGISTERED",
    "SCRATCH_BUCKET_MISSING",
    "INVALID_PATH",
    "SOURCE_NOT_FOUND",
    "BODY_TOO_LARGE",
    "FORBIDDEN",
    "RATE_LIMITED",
)
SYNC_ANSWERS = answers(*SYNC_CODES)


@router.post(
    "/artifacts/sync",
    responses=SYNC_ANSWERS,
)
def sync_artifacts(body: SyncCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Copy files from your agent's bucket to `artifacts/{agent}/` (unchanged ones are skipped)."""
    return _synced(sync_files(ctx, user, body.agent_id, "artifacts", body.source))


@router.post(
    "/shared-resources/sync",
    responses=SYNC_ANSWERS,
)
def sync_shared(body: SyncCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Copy files from your agent's bucket to `shared_resources/{agent}/`."""
    return _synced(sync_files(ctx, user, body.agent_id, "shared_resources", body.source))


@router.get("/taskforces")
def list_taskforces(ctx: ContextDep) -> dict[str, Any]:
    """Every taskforce with its creator."""
    state = ctx.record.state
    return {"items": [{"name": n, "creator": state.taskforce_created[n].creator} for n in sorted(state.taskforces)]}


@router.put(
    "/taskforces/{name}",
    status_code=201,
    responses=answers(
        "AGENT_NOT_REGISTERED",
        "INVALID_PATH",
        "SOURCE_NOT_FOUND",
        "RATE_LIMITED",
        "FORBIDDEN",
        unchanged="your README, updated (or unchanged)",
    ),
)
def write_taskforce(
    name: str, body: TaskforceWrite, ctx: ContextDep, user: CurrentUser, response: Response
) -> dict[str, Any]:
    """Create a taskforce with a README from your bucket (201), or update your own README (200)."""
    _, new = taskforces.write_readme(ctx, user, body.agent_id, name, body.path)
    if not new:
        response.status_code = 200
    return taskforces.describe(ctx, name)


@router.get("/taskforces/{name}", responses=answers("NOT_FOUND"))
def get_taskforce(name: str, ctx: ContextDep) -> dict[str, Any]:
    """A taskforce: README, notes, files, contributors."""
    return taskforces.describe(ctx, name)


@router.post(
    "/taskforces/{name}/notes",
    status_code=201,
    responses=answers("AGENT_NOT_REGISTERED", "NOT_FOUND", "RATE_LIMITED"),
)
def add_note(name: str, body: NoteCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Add a note to a taskforce."""
    note = taskforces.add_note(ctx, user, body.agent_id, name, body.body)
    return {"id": note.id, "author": note.author, "body": note.body}


@router.post(
    "/taskforces/{name}/files",
    responses=answers("NOT_FOUND", *SYNC_CODES),  # a sync into a taskforce that must exist
)
def add_files(name: str, body: SyncCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Copy a file (or folder) of your agent's bucket into the taskforce, under your agent's name."""
    taskforces.describe(ctx, name)  # 404 for an unknown taskforce
    return _synced(sync_files(ctx, user, body.agent_id, "taskforce", body.source, taskforce=name))
