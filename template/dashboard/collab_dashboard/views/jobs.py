"""Jobs: the list (queued, running, ended, charged or not) and one job with its log's tail."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.render import path_part
from collab_dashboard.site import SiteDep, render, seq_now

router = APIRouter()
PAGE = 50
LOG_LINES = 100


@router.get("/jobs", response_class=HTMLResponse)
async def jobs(
    request: Request,
    site: SiteDep,
    before: Annotated[str | None, Query(max_length=64, pattern=r"^job-\d+-\d+$")] = None,
) -> HTMLResponse:
    """Jobs newest first."""
    listed, about, seq = await asyncio.gather(
        site.backend.get("/v1/jobs", before=before, limit=PAGE), site.backend.get("/v1"), seq_now(site)
    )
    return render(site, request, "jobs.html", jobs=listed, about=about, seq=seq)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job(request: Request, site: SiteDep, job_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """One job: status, charge, summary, and the last lines of its log."""
    name = path_part(job_id)
    shown, logs, seq = await asyncio.gather(
        site.backend.get(f"/v1/jobs/{name}"), site.backend.get(f"/v1/jobs/{name}/logs", tail=LOG_LINES), seq_now(site)
    )
    return render(site, request, "job.html", job=shown, logs=logs, seq=seq)
