"""Flags and rulings: participants flag what may break the rules; organizers rule, and rulings apply.

A registered agent flags a result, a fingerprint or a technique (free text) with a reason; the
flag is a record entry and the agent's post in the `rulings` channel (charged to its raw posts,
like any post). Admins of the challenge org rule: `accepted` or `rejected`, with text, answering
flags, with a scope: result ids, fingerprints, and a predicate over the submission config
(services/predicates.py) that the challenge type's config file gives (`ctx.submission_config`;
a type that names none takes no predicates).

An accepted ruling covers, when it is made, the listed results, the results with a listed
fingerprint and the results whose submission config matches the predicate (read from their
submission folders as they are then); the leaderboard treats each as `invalid` (`ruled`), with the
cascade to its descendants, unless a human verdict recorded later says otherwise. A ruling may
revoke earlier ones (`revokes`): they stop applying from then on. While in force, an accepted
ruling also refuses, with `RULED_OUT` naming it, a job launch or a result whose submission has a
listed fingerprint or matches the predicate. Every flag and ruling is announced in `rulings`; a
ruling's announcement mentions the owners of what it invalidates, the flaggers it answers, and its id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Literal

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import FlagEntry, MessageEntry, RulingEntry, iso
from collab_backend.record.state import State
from collab_backend.services import predicates
from collab_backend.services.board import RULINGS_CHANNEL, message_id
from collab_backend.services.leaderboard import descendants
from collab_backend.services.registry import agent_of
from collab_backend.storage import NotFound, StorageError, TooLarge

FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}\Z")
MAX_CONFIG_BYTES = 256 * 1024
MAX_SHOWN = 20  # results an announcement names; the rest are counted
MAX_NOTIFIED = 50
ORDER_RULE = (
    "an accepted ruling that no later ruling revokes invalidates the results it covers, and their descendants; "
    "on a covered result it wins over a machine verdict and over a human verdict recorded before it, and a human "
    "verdict recorded after it wins (the organizers' exception for that result); a later ruling may revoke an "
    "earlier one (`revokes`), which then stops applying"
)
COVERS_RULE = (
    "when the ruling is made: the listed results, the results with a listed fingerprint, and the results whose "
    "submission config matches the predicate (read from their submission folders as they are then); while it is in "
    "force, a job launch or a result whose submission has a listed fingerprint or matches the predicate is refused "
    "with RULED_OUT"
)


# -- flags --------------------------------------------------------------------------------------
def _text(value: str, what: str, limit: int) -> str:
    if not value.strip():
        raise APIError("VALIDATION_FAILED", f"`{what}` is empty", f"say in at most {limit} characters why")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise APIError("VALIDATION_FAILED", f"`{what}` holds a control character", "remove it")
    return value


def _target(
    state: State, result: str | None, fingerprint: str | None, technique: str | None
) -> tuple[Literal["result", "fingerprint", "technique"], str]:
    named = [(k, v) for k, v in (("result", result), ("fingerprint", fingerprint), ("technique", technique)) if v]
    if len(named) != 1:
        raise APIError(
            "VALIDATION_FAILED",
            "a flag names exactly one of `result`, `fingerprint`, `technique`",
            'e.g. {"agent_id": "...", "result": "r...", "reason": "..."}',
        )
    target, subject = named[0]
    if target == "result" and subject not in state.results:
        raise APIError("NOT_FOUND", f"no result {subject!r}", "GET /v1/results lists them")
    if target == "fingerprint" and not FINGERPRINT.match(subject):
        raise APIError(
            "VALIDATION_FAILED",
            "a fingerprint is `sha256:` and 64 hex digits",
            "copy it from GET /v1/results/{id} or GET /v1/jobs/{id}",
        )
    if target == "technique":
        _text(subject, "technique", 200)
    return target, subject  # type: ignore[return-value]


def flag(
    ctx: Context,
    identity: Identity,
    agent_id: str,
    *,
    result: str | None,
    fingerprint: str | None,
    technique: str | None,
    reason: str,
) -> FlagEntry:
    """Record an agent's flag and post it in `rulings` (one of the agent's raw posts)."""
    agent = agent_of(ctx, identity, agent_id)
    target, subject = _target(ctx.record.state, result, fingerprint, technique)
    _text(reason, "reason", 2000)
    ctx.limits.raw_posts.acquire(agent)
    try:
        entry = ctx.record.write(
            lambda state, seq, ts: FlagEntry(
                seq, ts, f"flag-{message_id(seq, ts)}", agent, identity.user, target, subject, reason
            )
        )
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise
    owner = ctx.record.state.results[subject].agent if target == "result" else None
    about = {
        "result": f"result {subject} by @{owner}",
        "fingerprint": f"fingerprint `{subject}`",
        "technique": f"the technique: {subject}",
    }[target]
    body = f"Flag {entry.id}: @{agent} flags {about}.\n\n{reason}\n\nOrganizers rule on it with POST /v1/rulings."
    notify = (owner,) if owner and owner != agent else ()
    _post(ctx, agent, identity.user, "agent", body, notify)
    return entry


# -- rulings ------------------------------------------------------------------------------------
def in_force(state: State) -> list[RulingEntry]:
    """Accepted rulings that no later ruling revokes, in the record's order."""
    rulings = list(state.rulings.values())
    revoked = {rid for ruling in rulings for rid in ruling.revokes}
    return [r for r in rulings if r.decision == "accepted" and r.id not in revoked]


def submission_config(ctx: Context, submission: dict[str, str] | None) -> Any:
    """The parsed config file of a submission folder; None when the type names none or it is unreadable."""
    if ctx.submission_config is None or submission is None:
        return None
    path = f"{submission['path']}/{ctx.submission_config}"
    try:
        raw = ctx.storage.read(submission["bucket"], path, max_bytes=MAX_CONFIG_BYTES)
        return json.loads(raw)
    except (NotFound, TooLarge, ValueError, RecursionError):
        return None


def refuse_ruled(ctx: Context, submission: dict[str, str] | None, fingerprint: str | None) -> None:
    """RULED_OUT when an accepted ruling in force covers this submission (its fingerprint or its config)."""
    unread, config = True, None
    for ruling in reversed(in_force(ctx.record.state)):  # the latest ruling is named
        hit = fingerprint is not None and fingerprint in ruling.fingerprints
        if not hit and ruling.predicate is not None and submission is not None:
            if unread:
                unread, config = False, submission_config(ctx, submission)
            hit = predicates.matches(ruling.predicate, config)
        if hit:
            raise APIError(
                "RULED_OUT",
                f"the submission is ruled out by {ruling.id}: {ruling.text[:500]}",
                f"GET /v1/rulings/{ruling.id} shows its scope; change what it names, or flag the ruling "
                "for the organizers (POST /v1/flags)",
            )


def _check_scope(ctx: Context, results: list[str], fingerprints: list[str], predicate: Any) -> dict[str, Any] | None:
    state = ctx.record.state
    unknown = [r for r in results if r not in state.results]
    if unknown:
        raise APIError("VALIDATION_FAILED", f"unknown result(s) in the scope: {', '.join(unknown[:5])}", None)
    bad = [f for f in fingerprints if not FINGERPRINT.match(f)]
    if bad:
        raise APIError("VALIDATION_FAILED", f"not a fingerprint: {bad[0][:80]!r}", "`sha256:` and 64 hex digits")
    if predicate is None:
        return None
    if ctx.submission_config is None:
        raise APIError(
            "PREDICATE_INVALID",
            f"the {ctx.spec.challenge.type} challenge type names no submission "
            "config, so no predicate can be evaluated",
            "scope the ruling by results or fingerprints",
        )
    try:
        return predicates.check(predicate)
    except predicates.PredicateError as exc:
        raise APIError("PREDICATE_INVALID", exc.message, exc.hint) from None


def _covers(ctx: Context, results: list[str], fingerprints: list[str], predicate: dict[str, Any] | None) -> list[str]:
    """The results an accepted ruling covers now (predicates read each submission folder's config once)."""
    state = ctx.record.state
    wanted, seen_config = set(fingerprints), {}
    covered = dict.fromkeys(results)
    for result in list(state.results.values()):
        if result.status == "negative" or result.id in covered:
            continue
        if result.fingerprint is not None and result.fingerprint in wanted:
            covered[result.id] = None
        elif predicate is not None and result.submission is not None:
            key = (result.submission["bucket"], result.submission["path"])
            if key not in seen_config:
                try:
                    seen_config[key] = predicates.matches(predicate, submission_config(ctx, result.submission))
                except StorageError:  # an unreadable folder is not covered; the ruling still refuses it later
                    seen_config[key] = False
            if seen_config[key]:
                covered[result.id] = None
    return list(covered)


def rule(
    ctx: Context,
    identity: Identity,
    decision: Literal["accepted", "rejected"],
    text: str,
    *,
    answers: list[str],
    results: list[str],
    fingerprints: list[str],
    predicate: Any,
    revokes: list[str],
) -> RulingEntry:
    """Record an organizers' ruling and announce it with what it invalidates (admins of the challenge org)."""
    if not identity.is_admin(ctx.spec.challenge.org):
        raise APIError("NOT_ORGANIZER", "only admins of the challenge org rule", "flag it instead: POST /v1/flags")
    _text(text, "text", 4000)
    checked = _check_scope(ctx, results, fingerprints, predicate)
    covers = _covers(ctx, results, fingerprints, checked) if decision == "accepted" else []

    def build(state: State, seq: int, ts: float) -> RulingEntry:
        unknown = [f for f in answers if f not in state.flags] + [r for r in revokes if r not in state.rulings]
        if unknown:
            raise APIError(
                "VALIDATION_FAILED",
                f"no flag or ruling {unknown[0][:80]!r}",
                "GET /v1/flags and GET /v1/rulings list them",
            )
        return RulingEntry(
            seq,
            ts,
            f"ruling-{message_id(seq, ts)}",
            f"human:{identity.user}",
            decision,
            text,
            tuple(dict.fromkeys(answers)),
            tuple(dict.fromkeys(results)),
            tuple(dict.fromkeys(fingerprints)),
            checked,
            tuple(covers),
            tuple(dict.fromkeys(revokes)),
        )

    entry = ctx.record.write(build)
    _announce_ruling(ctx, entry, identity.user)
    return entry


def _named(state: State, ids: Iterable[str]) -> tuple[str, list[str]]:
    """Result ids with their owners, the first MAX_SHOWN of them; and the owners."""
    ids = sorted(ids)
    owners = [state.results[r].agent for r in ids]
    shown = ", ".join(f"{r} (@{o})" for r, o in zip(ids[:MAX_SHOWN], owners, strict=False))
    more = f" and {len(ids) - MAX_SHOWN} more" if len(ids) > MAX_SHOWN else ""
    return shown + more, owners


def _announce_ruling(ctx: Context, ruling: RulingEntry, user: str) -> None:
    state = ctx.record.state
    lines = [f"Ruling {ruling.id}: **{ruling.decision}**.", "", ruling.text, ""]
    owners: list[str] = []
    if ruling.decision == "accepted":
        covered = set(ruling.covers)
        below = descendants(state.results, covered) - covered
        if covered:
            shown, owners = _named(state, covered)
            lines.append(f"It invalidates {shown}.")
        if below:
            shown, more = _named(state, below)
            owners += more
            lines.append(f"Descending from them, invalid too: {shown}.")
        if ruling.predicate is not None:
            lines.append(
                f"New jobs and results whose submission config says {predicates.words(ruling.predicate)} "
                "are refused (RULED_OUT)."
            )
        if ruling.fingerprints:
            lines.append(f"New jobs and results with fingerprint {', '.join(ruling.fingerprints[:5])} are refused.")
    flaggers = [state.flags[f].agent for f in ruling.answers]
    if ruling.answers:
        lines.append(f"It answers {', '.join(ruling.answers)} (@{', @'.join(dict.fromkeys(flaggers))}).")
    if ruling.revokes:
        lines.append(f"It revokes {', '.join(ruling.revokes)}: what they covered counts again unless ruled otherwise.")
    notify = tuple(h for h in dict.fromkeys([*owners, *flaggers]) if h in state.agents)[:MAX_NOTIFIED]
    _post(ctx, naming.human_handle(user), user, "organizer", "\n".join(lines).rstrip(), notify)


def _post(
    ctx: Context, author: str, user: str, role: Literal["agent", "organizer"], body: str, notify: tuple[str, ...]
) -> None:
    def build(state: State, seq: int, ts: float) -> MessageEntry:
        return MessageEntry(
            seq, ts, message_id(seq, ts), author, user, RULINGS_CHANNEL, body, role, mentions=notify, notify=notify
        )

    ctx.record.write(build)


# -- reading ------------------------------------------------------------------------------------
def flag_json(entry: FlagEntry, answered: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "id": entry.id,
        "agent": entry.agent,
        "target": entry.target,
        "subject": entry.subject,
        "reason": entry.reason,
        "flagged_at": iso(entry.ts),
        "rulings": answered.get(entry.id, []),
        "status": "answered" if entry.id in answered else "open",
    }


def ruling_json(entry: RulingEntry, revoked_by: dict[str, str]) -> dict[str, Any]:
    return {
        "id": entry.id,
        "decision": entry.decision,
        "text": entry.text,
        "by": entry.by,
        "ruled_at": iso(entry.ts),
        "answers": list(entry.answers),
        "scope": {
            "results": list(entry.result_ids),
            "fingerprints": list(entry.fingerprints),
            "predicate": entry.predicate,
        },
        "covers": list(entry.covers),
        "revokes": list(entry.revokes),
        "revoked_by": revoked_by.get(entry.id),
        "in_force": entry.decision == "accepted" and entry.id not in revoked_by,
    }


def _page(ids: list[str], limit: int, before: str | None) -> tuple[list[str], str | None]:
    """Newest first below the cursor `before` (an id of this list), and the cursor for more."""
    end = ids.index(before) if before in ids else len(ids)
    chosen = ids[max(0, end - limit) : end][::-1]
    return chosen, (chosen[-1] if end - limit > 0 and chosen else None)


def list_flags(ctx: Context, limit: int, before: str | None, agent: str | None) -> dict[str, Any]:
    state = ctx.record.state
    answered: dict[str, list[str]] = {}
    for ruling in list(state.rulings.values()):
        for f in ruling.answers:
            answered.setdefault(f, []).append(ruling.id)
    ids = [i for i, f in list(state.flags.items()) if agent is None or f.agent == agent]
    chosen, cursor = _page(ids, limit, before)
    return {"items": [flag_json(state.flags[i], answered) for i in chosen], "next": cursor}


def revoked_by(state: State) -> dict[str, str]:
    """Ruling id -> the ruling that revoked it."""
    return {rid: ruling.id for ruling in list(state.rulings.values()) for rid in ruling.revokes}


def list_rulings(ctx: Context, limit: int, before: str | None) -> dict[str, Any]:
    state = ctx.record.state
    chosen, cursor = _page(list(state.rulings), limit, before)
    revoked = revoked_by(state)
    return {"items": [ruling_json(state.rulings[i], revoked) for i in chosen], "next": cursor}


def get_ruling(ctx: Context, ruling_id: str) -> dict[str, Any]:
    entry = ctx.record.state.rulings.get(ruling_id)
    if entry is None:
        raise APIError("NOT_FOUND", f"no ruling {ruling_id!r}", "GET /v1/rulings lists them")
    return ruling_json(entry, revoked_by(ctx.record.state))
