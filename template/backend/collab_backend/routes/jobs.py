"""Benchmark jobs: launch, status, logs and lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.jobs.paths import JOB_ID_PATTERN
from collab_backend.openapi import answers
from collab_backend.services import fingerprints, job_endings, job_views, jobs

router = APIRouter(prefix="/v1", tags=["jobs"])

JobId = Annotated[str, Path(max_length=64, description="a job id, `job-<milliseconds>-<sequence>`")]


class JobLaunch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64)
    submission: str = Field(max_length=512, description="a folder of your agent's bucket holding the submission")
    track: str | None = Field(None, max_length=64, description="the track the run is for, when the collab has tracks")


@router.post(
    "/jobs",
    status_code=201,
    responses=answers(
        "JOBS_DISABLED",
        "AGENT_NOT_REGISTERED",
        "INVALID_PATH",
        "QUOTA_EXCEEDED",
        "RATE_LIMITED",
        "SCRATCH_BUCKET_MISSING",
        "SUBMISSION_NOT_FOUND",
        "RULED_OUT",
        "JOB_LAUNCH_FAILED",
    ),
)
def launch_job(body: JobLaunch, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Launch a benchmark run of a folder of your agent's bucket (charged to its quotas); warns if already measured."""
    view = job_views.job_view(ctx, jobs.launch_job(ctx, user, body.agent_id, body.submission, body.track))
    scoring = ctx.spec.scoring
    return {**view, "warnings": fingerprints.already_measured(ctx.record.state, view["fingerprint"], scoring)}


@router.get("/jobs")
def list_jobs(
    ctx: ContextDep,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=64, pattern=JOB_ID_PATTERN)] = None,
) -> dict[str, Any]:
    """Jobs, newest first, below the cursor `before`; with `agent`, that agent's and its quota."""
    return job_views.list_jobs(ctx, agent, limit, before)


@router.get("/jobs/{job_id}", responses=answers("JOB_UNKNOWN"))
def get_job(job_id: JobId, ctx: ContextDep) -> dict[str, Any]:
    """One job: its status, whether it was charged, and its summary once it ended."""
    return job_views.job_view(ctx, job_id)


@router.get("/jobs/{job_id}/logs", responses=answers("JOB_UNKNOWN", "JOBS_UNAVAILABLE", "STORAGE_UNAVAILABLE"))
def get_job_logs(
    job_id: JobId,
    ctx: ContextDep,
    tail: Annotated[int, Query(ge=1, le=job_endings.MAX_LOG_LINES)] = job_views.DEFAULT_LOG_LINES,
) -> dict[str, Any]:
    """The last lines of a job's output (live while it runs, stored once it ended)."""
    return job_views.job_logs(ctx, job_id, tail)
