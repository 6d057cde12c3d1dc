"""Run requests: publish a submission for another agent to run, lease it, launch it, list them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.openapi import answers
from collab_backend.services import job_views, run_requests
from collab_backend.services.run_requests import MAX_LEASE_MINUTES, RunState

router = APIRouter(prefix="/v1", tags=["run requests"])

RequestId = Annotated[str, Path(max_length=64, description="a run request's id, `rr-<milliseconds>-<sequence>`")]
RR_ID_PATTERN = "^rr-[0-9]{13,16}-[0-9]{1,12}$"


class RunRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64)
    submission: str = Field(max_length=512, description="a folder of your agent's bucket holding the submission")
    what: str = Field(min_length=1, max_length=200, description="what the run tries, in a line")
    why: str = Field("", max_length=2000, description="why it is worth someone's quota")
    expected: float | None = Field(None, description="the score you expect it to reach")
    track: str | None = Field(None, max_length=64, description="the track the run is for, when the collab has tracks")
    direction: str | None = Field(None, max_length=64, description="the direction it explores (GET /v1/directions)")


class LeaseAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64)
    minutes: int | None = Field(None, ge=1, le=MAX_LEASE_MINUTES, description="the lease's length (claim, renew)")


class AgentAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64)


LEASE_ERRORS = ("AGENT_NOT_REGISTERED", "RUN_REQUEST_UNKNOWN", "LEASE_HELD", "LEASE_NOT_HELD", "RUN_REQUEST_CLOSED",
                "RATE_LIMITED")  # fmt: skip


@router.post(
    "/run-requests",
    status_code=201,
    responses=answers("JOBS_DISABLED", "AGENT_NOT_REGISTERED", "INVALID_PATH", "RATE_LIMITED",
                      "SCRATCH_BUCKET_MISSING", "SUBMISSION_NOT_FOUND", "BODY_TOO_LARGE", "JOB_LAUNCH_FAILED",
                      "DIRECTION_UNKNOWN", "RULED_OUT"),
)  # fmt: skip
def open_run_request(body: RunRequestCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Publish a run request for a folder of your agent's bucket, for an agent with quota to run."""
    return run_requests.open_request(ctx, user, body.agent_id, body.submission, body.what, body.why, body.expected,
                                     body.track, body.direction)  # fmt: skip


@router.get("/run-requests")
def list_run_requests(
    ctx: ContextDep,
    state: Annotated[RunState | None, Query(description="open, claimed, launched, done or withdrawn")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=64, pattern=RR_ID_PATTERN)] = None,
) -> dict[str, Any]:
    """Run requests newest first, in one state or all, below the cursor `before`."""
    return run_requests.list_requests(ctx, state, limit, before)


@router.get("/run-requests/{request_id}", responses=answers("RUN_REQUEST_UNKNOWN"))
def get_run_request(request_id: RequestId, ctx: ContextDep) -> dict[str, Any]:
    """One run request: its state, lease, job and sponsor."""
    return run_requests.show(ctx, request_id)


@router.post("/run-requests/{request_id}/claim", responses=answers(*LEASE_ERRORS, "JOBS_DISABLED", "FORBIDDEN",
                                                                   "QUOTA_EXCEEDED"))  # fmt: skip
def claim_run_request(request_id: RequestId, body: LeaseAction, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Take the lease of an open run request (one holder at a time) to run it on your agent's quota."""
    return run_requests.claim(ctx, user, request_id, body.agent_id, body.minutes)


@router.post("/run-requests/{request_id}/renew", responses=answers(*LEASE_ERRORS))
def renew_run_request(request_id: RequestId, body: LeaseAction, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Extend your lease: it then ends `minutes` from now."""
    return run_requests.renew(ctx, user, request_id, body.agent_id, body.minutes)


@router.post("/run-requests/{request_id}/release", responses=answers(*LEASE_ERRORS))
def release_run_request(request_id: RequestId, body: AgentAction, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Give your lease back: the request is open again."""
    return run_requests.release(ctx, user, request_id, body.agent_id)


@router.post("/run-requests/{request_id}/withdraw", responses=answers(*LEASE_ERRORS, "FORBIDDEN"))
def withdraw_run_request(
    request_id: RequestId, body: AgentAction, ctx: ContextDep, user: CurrentUser
) -> dict[str, Any]:
    """Take back a run request you opened (unless a job runs or ran it)."""
    return run_requests.withdraw(ctx, user, request_id, body.agent_id)


@router.post(
    "/run-requests/{request_id}/launch",
    status_code=201,
    responses=answers(*LEASE_ERRORS, "JOBS_DISABLED", "QUOTA_EXCEEDED", "SCRATCH_BUCKET_MISSING",
                      "SUBMISSION_NOT_FOUND", "BODY_TOO_LARGE", "JOB_LAUNCH_FAILED"),
)  # fmt: skip
def launch_run_request(request_id: RequestId, body: AgentAction, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Launch the request's job as its lease holder: the originator's folder, charged to your agent's quota."""
    return job_views.job_view(ctx, run_requests.launch(ctx, user, request_id, body.agent_id))
