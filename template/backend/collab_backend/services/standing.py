"""The challenge type's standing rules: its denylist, seeded with the harness, shown beside the rulings.

A challenge type may name a denylist file inside its harness folder (its `denylist` hook;
provisioning passes it as `COLLAB_DENYLIST`, `ctx.denylist`). The backend reads it from the
central bucket, where it was seeded with the harness (`<jobs.harness_prefix><denylist>`), again
only when its hash changes. Its form:

    {"format": "denylist", "version": 1,
     "names": {"<object path>": {"<name>": "<reason>", ...}, ...},
     "values": {"<value set>": {"fields": ["<path>", ...], "keys_of": ["<path>", ...],
                                "denied": {"<value>": "<reason>", ...}}, ...}}

Each entry is a standing rule (services/denylist.py parses the document) in the rulings'
predicate vocabulary (services/predicates.py), with its reason as the text: a denied name under
an object is `{"field": "<object>.<name>", "op": "set"}` (id `type:<object>.<name>`); a denied
value of a field is `{"field": "<field>", "op": "equals", "value": <value>}` (id
`type:<field>=<value>`); a denied value that keys an object (`keys_of`) is `set` on
`<object>.<value>`. Standing rules are in force from the start and never
revoked; organizers' rulings extend them. The harness refuses every entry itself (with checks no
predicate expresses, such as the speculative method vLLM would resolve); the backend refuses a job
launch whose submission config matches one, with `RULED_OUT` naming it, before a job is spent on
it. A file that is missing, too large or malformed gives no standing rules, and `problem` says why
(the harness still refuses what it lists).
"""

from __future__ import annotations

import json
from typing import Any

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.services import predicates
from collab_backend.services.denylist import Standing, StandingRule, parse
from collab_backend.storage import NotFound, TooLarge

MAX_DENYLIST_BYTES = 1024 * 1024


def current(ctx: Context) -> Standing:
    """The standing rules now (read again when the seeded file changed); none when the type has no denylist."""
    if ctx.denylist is None:
        return Standing()
    path = ctx.spec.jobs.harness_prefix.rstrip("/") + "/" + ctx.denylist
    info = ctx.storage.stat(ctx.central, [path]).get(path)
    if info is None:
        return Standing(path, None, (), f"{path} is not in the central bucket (organizers: `collab apply` seeds it)")
    cached = ctx.standing.last
    if cached is not None and cached.source == path and cached.hash == info.hash:
        return cached
    try:
        rules, problems = parse(json.loads(ctx.storage.read(ctx.central, path, max_bytes=MAX_DENYLIST_BYTES)))
        problem = f"{len(problems)} entries are not rules, e.g. {problems[0]}" if problems else None
    except NotFound:
        rules, problem = [], f"{path} vanished from the central bucket"
    except TooLarge:
        rules, problem = [], f"{path} is larger than {MAX_DENYLIST_BYTES} bytes"
    except (ValueError, RecursionError) as exc:
        rules, problem = [], f"{path} is not JSON: {str(exc)[:200]}"
    ctx.standing.last = Standing(path, info.hash, tuple(rules), problem)
    return ctx.standing.last


def rule_json(rule: StandingRule) -> dict[str, Any]:
    """A standing rule shaped like an organizers' ruling, marked `standing`."""
    return {
        "id": rule.id,
        "standing": True,
        "decision": "accepted",
        "text": rule.reason,
        "by": "challenge type",
        "scope": {"results": [], "fingerprints": [], "predicate": rule.predicate},
        "in_force": True,
    }


def list_standing(ctx: Context, field_prefix: str | None) -> dict[str, Any]:
    standing = current(ctx)
    rules = [r for r in standing.rules if field_prefix is None or r.predicate["field"].startswith(field_prefix)]
    return {
        "source": standing.source,
        "problem": standing.problem,
        "count": len(rules),
        "items": [rule_json(r) for r in rules],
    }


def get_standing(ctx: Context, rule_id: str) -> dict[str, Any]:
    rule = current(ctx).get(rule_id)
    if rule is None:
        raise APIError("NOT_FOUND", f"no standing rule {rule_id[:120]!r}", "GET /v1/rulings/standing lists them")
    return rule_json(rule)


def refuse_standing(ctx: Context, config: Any) -> None:
    """RULED_OUT when the submission config matches a standing rule of the challenge type."""
    if config is None:
        return
    for rule in current(ctx).rules:
        if predicates.matches(rule.predicate, config):
            raise APIError(
                "RULED_OUT",
                f"the submission is ruled out by the challenge type's standing rule {rule.id} "
                f"({predicates.words(rule.predicate)}): {rule.reason[:500]}",
                f"GET /v1/rulings/{rule.id} shows it; change what it names (the harness would refuse it too)",
            )
