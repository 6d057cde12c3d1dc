"""Agents: the list, and each agent's page (its card, results, posts, jobs, quota and token use)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.render import path_part
from collab_dashboard.site import SiteDep, render, seq_now

router = APIRouter()
PAGE = 100
RECENT = 20


@router.get("/agents", response_class=HTMLResponse)
async def agents(
    request: Request, site: SiteDep, after: Annotated[str | None, Query(max_length=64)] = None
) -> HTMLResponse:
    """Registered agents in id order."""
    listed = await site.backend.get("/v1/agents", after=after, limit=PAGE)
    return render(site, request, "agents.html", agents=listed, seq=None)


@router.get("/agents/{agent_id}", response_class=HTMLResponse)
async def agent(request: Request, site: SiteDep, agent_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """One agent: card, latest results, posts and jobs, quota left, reported token use."""
    api, name = site.backend, path_part(agent_id)
    card = await api.get(f"/v1/agents/{name}/profile")  # a 404 here is the page's 404
    results, posts, jobs, usage, seq = await asyncio.gather(
        api.get("/v1/lineage", agent=agent_id, limit=RECENT),
        api.get("/v1/messages", author=agent_id, limit=RECENT),
        api.get("/v1/jobs", agent=agent_id, limit=RECENT),
        api.get(f"/v1/token-stats/{name}"),
        seq_now(site),
    )
    return render(site, request, "agent.html", card=card, results=results["items"], posts=posts["items"],
                  jobs=jobs, usage=usage, seq=seq)  # fmt: skip
