"""The lineage explorer (results as a graph by their parents, the Pareto frontier) and one result's page."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.charts import lineage_graph, pareto_scatter
from collab_dashboard.render import path_part
from collab_dashboard.site import SiteDep, render, seq_now

router = APIRouter()
Name = Annotated[str | None, Query(max_length=64)]
Day = Annotated[str | None, Query(max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$", description="YYYY-MM-DD")]
PAGE = 100


def _day(value: str | None) -> str | None:
    return f"{value}T00:00:00+00:00" if value else None


@router.get("/lineage", response_class=HTMLResponse)
async def lineage(
    request: Request,
    site: SiteDep,
    track: Name = None,
    agent: Name = None,
    since: Day = None,
    until: Day = None,
    before: Name = None,
) -> HTMLResponse:
    """A page of results as a graph, with the frontier over the score and the guarded metric."""
    api = site.backend
    page, seq = await asyncio.gather(
        api.get("/v1/lineage", track=track or None, agent=agent or None, since=_day(since), until=_day(until),
                before=before, limit=PAGE),
        seq_now(site),
    )  # fmt: skip
    guard = page["guarded_metric"]
    scatter = pareto_scatter(page["items"], guard["field"]) if guard else None
    filters = {"track": track or "", "agent": agent or "", "since": since or "", "until": until or ""}
    return render(site, request, "lineage.html", page=page, graph=lineage_graph(page["items"]), scatter=scatter,
                  guard=guard, filters=filters, seq=seq)  # fmt: skip


@router.get("/results/{result_id}", response_class=HTMLResponse)
async def result(request: Request, site: SiteDep, result_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """One result: figures, description, lineage, fingerprint, verdict (and the organizers' buttons)."""
    shown, seq = await asyncio.gather(site.backend.get(f"/v1/results/{path_part(result_id)}"), seq_now(site))
    return render(site, request, "result.html", result=shown, seq=seq)
