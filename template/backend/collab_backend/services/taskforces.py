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
from collab_backend.services.board import check_body, message_id
from collab_backend.services.registry import agent_of
from collab_backend.storage import NotFound, check_path

NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?\Z")


def _readme(ctx: Context, agent: str, path: str) -> tuple[str, dict[str, str]]:
    check_path(path)
    bucket = naming.scratch_bucket(ctx.spec, agent)
    info = ctx.storage.stat(bucket, [path]).get(path)
    if info is None:
        raise APIError("SOURCE_NOT_FOUND", f"{path} is not in {bucket}", "write the README to your bucket first")
    if info.size > ctx.spec.board.max_message_bytes:
        raise APIError("BODY_TOO_LARGE", f"{path} is larger than {ctx.spec.board.max_message_bytes} bytes", None)
    try:
        text = ctx.storage.read(bucket, path).decode("utf-8")
    except NotFound:
        raise APIError("SOURCE_NOT_FOUND", f"{path} vanished from {bucket}", None) from None
    except UnicodeDecodeError:
        raise APIError("NOT_UTF8", f"{path} is not UTF-8 text", None) from None
    return check_body(ctx, text), {"bucket": bucket, "path": path, "hash": info.hash}


def write_readme(ctx: Context, identity: Identity, agent_id: str, name: str, path: str) -> tuple[TaskforceEntry, bool]:
    """Create a taskforce (True) or update its README (False); only the creator may update it."""
    agent = agent_of(ctx, identity, agent_id)
    if not NAME.match(name) or "--" in name:
        raise APIError("VALIDATION_FAILED", f"bad taskforce name {name!r}", "lowercase letters, digits and '-'")
    readme, source = _readme(ctx, agent, path)
    ctx.limits.promotions.acquire(source["bucket"])

    def build(state: State, seq: int, ts: float) -> TaskforceEntry:
        created = state.taskforce_created.get(name)
        if created is not None and created.creator != agent:
            raise APIError("FORBIDDEN", f"the README of {name!r} belongs to {created.creator}", "add a note instead")
        return TaskforceEntry(seq, ts, name, agent, readme, source)

    new = name not in ctx.record.state.taskforces
    try:
        return ctx.record.write(build), new
    except APIError:
        ctx.limits.promotions.release(source["bucket"])
        raise


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
