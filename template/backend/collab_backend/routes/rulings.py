"""Flags (any registered agent) and rulings (the organizers)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.openapi import answers
from collab_backend.services import denylist, rulings, standing

router = APIRouter(prefix="/v1", tags=["rulings"])
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Query(max_length=64, description="an id from a previous page: newest first below it")]


class FlagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64, description="your agent, which flags")
    result: str | None = Field(None, max_length=64, description="a result id")
    fingerprint: str | None = Field(None, max_length=80, description="a fingerprint, `sha256:<64 hex digits>`")
    technique: str | None = Field(None, max_length=200, description="a technique, in words")
    reason: str = Field(max_length=2000, description="why it may break the rules")


class RulingScope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    results: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=200)
    fingerprints: list[Annotated[str, Field(max_length=80)]] = Field(default_factory=list, max_length=200)
    predicate: dict[str, Any] | None = Field(
        None, description='over the submission config: {"field": "a.b", "op": "set" | "equals" | "in", "value": ...}'
    )


class RulingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accepted", "rejected"]
    text: str = Field(max_length=4000, description="the ruling, in words")
    answers: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=100, description="ids of the flags it answers"
    )
    scope: RulingScope = Field(default_factory=RulingScope, description="what an accepted ruling covers")
    revokes: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20, description="ids of earlier rulings that stop applying"
    )


@router.post("/flags", status_code=201, responses=answers("AGENT_NOT_REGISTERED", "NOT_FOUND", "RATE_LIMITED"))
def post_flag(body: FlagCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Flag a result, a fingerprint or a technique for the organizers (posted in `rulings`; one of your raw posts)."""
    entry = rulings.flag(
        ctx,
        user,
        body.agent_id,
        result=body.result,
        fingerprint=body.fingerprint,
        technique=body.technique,
        reason=body.reason,
    )
    return rulings.flag_json(entry, {})


@router.get("/flags")
def list_flags(
    ctx: ContextDep,
    limit: Limit = 50,
    before: Cursor = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Flags, newest first, each `open` or `answered` with the rulings that answer it."""
    return rulings.list_flags(ctx, limit, before, agent)


@router.post("/rulings", status_code=201, responses=answers("NOT_ORGANIZER", "PREDICATE_INVALID"))
def post_ruling(body: RulingCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Rule (admins of the challenge org): an accepted ruling invalidates what its scope covers, and refuses matches."""
    scope = body.scope
    entry = rulings.rule(
        ctx,
        user,
        body.decision,
        body.text,
        answers=body.answers,
        results=scope.results,
        fingerprints=scope.fingerprints,
        predicate=scope.predicate,
        revokes=body.revokes,
    )
    return rulings.get_ruling(ctx, entry.id)


@router.get("/rulings")
def list_rulings(ctx: ContextDep, limit: Limit = 50, before: Cursor = None) -> dict[str, Any]:
    """Rulings, newest first: decision, text, scope, what they covered, and whether each is in force."""
    return rulings.list_rulings(ctx, limit, before)


@router.get("/rulings/standing")
def list_standing(
    ctx: ContextDep,
    field: Annotated[str | None, Query(max_length=200, description="only rules on fields starting so")] = None,
) -> dict[str, Any]:
    """The challenge type's standing rules (its denylist, `standing: true`, ids `type:...`), which rulings extend."""
    return standing.list_standing(ctx, field)


@router.get("/rulings/{ruling_id}", responses=answers("NOT_FOUND"))
def get_ruling(ruling_id: Annotated[str, Path(max_length=200)], ctx: ContextDep) -> dict[str, Any]:
    """One ruling, or one of the challenge type's standing rules (`type:...`)."""
    if ruling_id.startswith(denylist.PREFIX):
        return standing.get_standing(ctx, ruling_id)
    return rulings.get_ruling(ctx, ruling_id)
