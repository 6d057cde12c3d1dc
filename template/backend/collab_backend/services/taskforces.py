"""Taskforces: a README owned by its creator, notes from anyone, named files; contributors derived."""

from __future__ import annotations

import re
from typing import Any

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import TaskforceEntry, TaskforceNoteEntry
from collab_backend.record.state import State
from collab_backend.record.store import Unchanged
from collab_backend.services.board import check_body, message_id
from collab_backend.services.registry import agent_of
from collab_backend.services.sources import locate, read_text

NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?\Z")


def _readme(ctx: Context, agent: str, path: str) -> tuple[str, dict[str, str]]:
    src = locate(ctx, agent, path)
    return check_body(ctx, read_text(ctx, src), "the README"), src.record()


def write_readme(ctx: Context, identity: Identity, agent_id: str, name: str, path: str) -> tuple[TaskforceEntry, bool]:
    """Create a taskforce (True) or update its README (False); only the creator may update it.

    The same README content again writes nothing. Both decisions are the writer's.
    """
    agent = agent_of(ctx, identity, agent_id)
    if not NAME.match(name) or "--" in name:
        raise APIError("VALIDATION_FAILED", f"bad taskforce name {name!r}", "lowercase letters, digits and '-'")
    readme, source = _readme(ctx, agent, path)
    ctx.limits.promotions.acquire(source["bucket"])

    def build(state: State, seq: int, ts: float) -> TaskforceEntry:
        created = state.taskforce_created.get(name)
        if created is not None and created.creator != agent:
            raise APIError("FORBIDDEN", f"the README of {name!r} belongs to {created.creator}", "add a note instead")
        current = state.taskforces.get(name)
        if current is not None and current.source == source:
            raise Unchanged(current)
        return TaskforceEntry(seq, ts, name, agent, readme, source)

    try:
        entry, written = ctx.record.write_new(build)
    except APIError:
        ctx.limits.promotions.release(source["bucket"])
        raise
    if not written:
        ctx.limits.promotions.release(source["bucket"])
    return entry, written and ctx.record.state.taskforce_created[name] is entry


def add_note(ctx: Context, identity: Identity, agent_id: str, name: str, body: str) -> TaskforceNoteEntry:
    """Any registered agent adds a note."""
    agent = agent_of(ctx, identity, agent_id)
    check_body(ctx, body)
    if name not in ctx.record.state.taskforces:
        raise APIError("NOT_FOUND", f"no taskforce {name!r}", None)
    ctx.limits.raw_posts.acquire(agent)

    def build(state: State, seq: int, ts: float) -> TaskforceNoteEntry:
        return TaskforceNoteEntry(seq, ts, message_id(seq, ts), name, agent, body)

    try:
        return ctx.record.write(build)
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise


def describe(ctx: Context, name: str) -> dict[str, Any]:
    """A taskforce with its README, notes, files and contributors (creator, note authors, file owners)."""
    state = ctx.record.state
    entry = state.taskforces.get(name)
    if entry is None:
        raise APIError("NOT_FOUND", f"no taskforce {name!r}", None)
    prefix = naming.taskforce_path(name, "files/")
    files = [
        {"path": path, "agent": agent, "size": size} for path, (agent, _, _, size) in sorted(state.copies.items())
        if path.startswith(prefix)
    ]  # fmt: skip
    notes = state.taskforce_notes.get(name, [])
    contributors = list(dict.fromkeys([entry.creator, *(n.author for n in notes), *(f["agent"] for f in files)]))
    return {
        "name": name,
        "creator": state.taskforce_created[name].creator,
        "readme": entry.readme,
        "notes": [{"id": n.id, "author": n.author, "body": n.body} for n in notes[-100:]],
        "files": files,
        "contributors": contributors,
    }
