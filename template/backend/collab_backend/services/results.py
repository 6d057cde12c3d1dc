"""Results, verdicts and the verification index.

A result is promoted from the agent's own bucket (never sent raw), checked against the spec
(score and required fields, metric types, track, lineage, fingerprint) and then immutable.
Verdicts are `pending | valid | invalid`; a human verdict always wins over a machine one, and a
human sets one with compare-and-set (`expected`), so two organizers cannot silently overwrite each
other. `results/verification_status.json` mirrors the verdicts; organizers may also edit it by
hand, and the backend picks such edits up as human verdicts. Every change is announced on the board.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, Literal

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import MessageEntry, ResultEntry, VerdictEntry, iso
from collab_backend.record.state import State
from collab_backend.record.store import Unchanged
from collab_backend.services.board import message_id
from collab_backend.services.frontmatter import split_frontmatter
from collab_backend.services.registry import agent_of
from collab_backend.services.sources import locate, read_text
from collab_backend.storage import StorageError

log = logging.getLogger("collab_backend.results")
FINGERPRINT = re.compile(r"^[A-Za-z0-9:._/+=-]{1,128}\Z")
MAX_PARENTS = 20
STAMPED = {"status", "track", "parents", "fingerprint"}  # checked, then written by the server from the entry
Verdict = Literal["pending", "valid", "invalid"]


def _number(fields: dict[str, Any], name: str) -> float:
    value = fields.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise APIError("VALIDATION_FAILED", f"`{name}` must be a finite number, found {value!r}", None)
    return float(value)


def check_result_fields(ctx: Context, fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a result's frontmatter against the spec; return the normalised parts.

    `client_fields` holds what the result file keeps of the frontmatter besides the fields the
    server stamps: the score and the metrics as the numbers it read, and the spec's other
    required fields. Anything else (a `verdict: valid`, a `verified: true`) is dropped.
    """
    scoring = ctx.spec.scoring
    missing = [f for f in (scoring.score_field, *scoring.required_fields) if f not in fields]
    if missing:
        raise APIError(
            "VALIDATION_FAILED", f"missing required field(s): {', '.join(missing)}", "see GET /v1 for the result format"
        )
    metrics = {m.field: _number(fields, m.field) for m in scoring.metrics if m.field in fields}
    status = fields.get("status", "agent-run")
    if status not in ("agent-run", "negative"):
        raise APIError("VALIDATION_FAILED", "`status` is `agent-run` or `negative`", None)
    track = fields.get("track")
    names = [t.name for t in scoring.tracks]
    if names and track not in names:
        raise APIError("VALIDATION_FAILED", f"`track` must be one of: {', '.join(names)}", None)
    if not names and track is not None:
        raise APIError("VALIDATION_FAILED", "this collab has no tracks; remove `track`", None)
    parents = fields.get("parents", [])
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents) or len(parents) > MAX_PARENTS:
        raise APIError("VALIDATION_FAILED", f"`parents` is a list of at most {MAX_PARENTS} result ids", None)
    fingerprint = fields.get("fingerprint")
    if not isinstance(fingerprint, str) or not FINGERPRINT.match(fingerprint):
        raise APIError(
            "VALIDATION_FAILED", "`fingerprint` (what was run, e.g. sha256:<hash of the submission>) is required", None
        )
    score = _number(fields, scoring.score_field)
    kept = {name: fields[name] for name in scoring.required_fields if name not in STAMPED}
    return {
        "score": score,
        "client_fields": {**kept, scoring.score_field: score, **metrics},
        "metrics": metrics,
        "status": status,
        "track": track,
        "parents": tuple(dict.fromkeys(parents)),
        "fingerprint": fingerprint,
    }


def promote_result(ctx: Context, identity: Identity, agent_id: str, path: str) -> tuple[ResultEntry, bool]:
    """Record a result from the agent's bucket; the same content again returns the first (False).

    The writer decides what is the same, so concurrent submissions of one file record it once.
    """
    agent = agent_of(ctx, identity, agent_id)
    src = locate(ctx, agent, path)
    state = ctx.record.state
    done = state.promoted_results.get(src.key)
    if done is not None:  # a quick answer; the writer checks again
        return state.results[done], False
    text = read_text(ctx, src)
    fields, body = split_frontmatter(text)
    parts = check_result_fields(ctx, fields)
    source = src.record()
    ctx.limits.promotions.acquire(src.bucket)

    def build(state: State, seq: int, ts: float) -> ResultEntry:
        first = state.promoted_results.get(src.key)
        if first is not None:
            raise Unchanged(state.results[first])
        unknown = [p for p in parts["parents"] if p not in state.results]
        if unknown:
            raise APIError("VALIDATION_FAILED", f"unknown parent result(s): {', '.join(unknown[:5])}", None)
        return ResultEntry(seq, ts, f"r{message_id(seq, ts)}", agent, identity.user, body=body, source=source,
                           **parts)  # fmt: skip

    try:
        entry, new = ctx.record.write_new(build)
    except APIError:
        ctx.limits.promotions.release(src.bucket)
        raise
    if not new:
        ctx.limits.promotions.release(src.bucket)
    return entry, new


def set_verdict(
    ctx: Context, result_id: str, verdict: Verdict, by: str, reason: str = "", expected: str | None = None
) -> VerdictEntry | None:
    """Record a verdict; None when nothing changed (same verdict, or a machine against a human)."""
    human = by.startswith("human:")

    def build(state: State, seq: int, ts: float) -> VerdictEntry:
        if result_id not in state.results:
            raise APIError("NOT_FOUND", f"no result {result_id!r}", None)
        current = state.verdicts.get(result_id)
        shown = current.verdict if current else "pending"
        if expected is not None and expected != shown:
            raise APIError(
                "VERDICT_CHANGED", f"the verdict is now {shown!r}, not {expected!r}", "reload and decide again"
            )
        if current and current.human and not human:
            raise _Unchanged
        if current and current.verdict == verdict and current.human == human:
            raise _Unchanged
        if current is None and verdict == "pending":
            raise _Unchanged
        return VerdictEntry(seq, ts, result_id, verdict, by, reason)

    try:
        entry = ctx.record.write(build)
    except _Unchanged:
        return None
    _announce(ctx, entry)
    sync_index_file(ctx)
    return entry


class _Unchanged(Exception):
    """Raised inside a builder to write nothing."""


def _announce(ctx: Context, entry: VerdictEntry) -> None:
    result = ctx.record.state.results[entry.result_id]
    channel = "results" if "results" in ctx.record.state.channels else "general"
    why = f": {entry.reason}" if entry.reason else ""
    body = f"Result {entry.result_id} by @{result.agent} is now **{entry.verdict}** ({entry.by}){why}."

    def build(state: State, seq: int, ts: float) -> MessageEntry:
        return MessageEntry(seq, ts, message_id(seq, ts), naming.SYSTEM_AUTHOR, "collab", channel, body, "organizer",
                            mentions=(result.agent,), refs=(), notify=(result.agent,))  # fmt: skip

    ctx.record.write(build)


def render_index(state: State) -> bytes:
    """The verification index file: every verdict, by result id."""
    doc = {
        rid: {"verdict": v.verdict, "by": v.by, "reason": v.reason, "at": iso(v.ts)}
        for rid, v in sorted(state.verdicts.items())
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def ingest_index_edits(ctx: Context) -> int:
    """Apply verdicts an organizer wrote into the index file by hand; return how many changed."""
    try:
        info = ctx.storage.stat(ctx.central, [naming.VERIFICATION_INDEX]).get(naming.VERIFICATION_INDEX)
        if info is None or info.hash == ctx.watch.verification_hash:
            return 0
        raw = ctx.storage.read(ctx.central, naming.VERIFICATION_INDEX)
    except StorageError as exc:
        log.warning("verification index not checked: %s", exc)
        return 0
    ctx.watch.verification_hash = info.hash
    try:
        edited = json.loads(raw)
    except ValueError:
        log.error("the hand-edited verification index is not JSON; ignored until fixed")
        return 0
    changed = 0
    for rid, item in edited.items() if isinstance(edited, dict) else []:
        fields = item if isinstance(item, dict) else {"verdict": item}
        verdict, reason = fields.get("verdict"), _storable_text(fields.get("reason", ""))[:500]
        by = _storable_text(fields.get("by", ""))
        state = ctx.record.state
        if rid not in state.results or verdict not in ("pending", "valid", "invalid"):
            continue
        current = state.verdicts.get(rid)
        if (current.verdict if current else "pending") == verdict:
            continue
        if set_verdict(ctx, rid, verdict, by if by.startswith("human:") else "human:index-file", reason):
            changed += 1
    return changed


def _storable_text(value: Any) -> str:
    """A hand-edited value as text the record can store (lone surrogates and NULs replaced)."""
    return str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")


def sync_index_file(ctx: Context) -> None:
    """Rewrite the verification index from the record, after taking in any hand edit."""
    ingest_index_edits(ctx)
    ctx.record.write_files({naming.VERIFICATION_INDEX: render_index(ctx.record.state)})
    info = ctx.storage.stat(ctx.central, [naming.VERIFICATION_INDEX]).get(naming.VERIFICATION_INDEX)
    ctx.watch.verification_hash = info.hash if info else None
