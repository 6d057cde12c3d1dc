"""Views of a plan and of a collab's status: a table for people, JSON (`format_version` 1) for tools.

Invariant: both views are built from the plan's data only; no value here comes from the token
(secrets show as present/absent/set, the fingerprint is a salted hash, the token's scopes are
permission names).

Format version 1 grows only by optional fields, which readers of version 1 may ignore:
- plan: an action may carry `details` (an object). The check-only `jobs` action (resource `jobs`,
  address `jobs`, id: the org the Jobs run in and that pays, action always `no-op`) has
  `details: {namespace, image, flavor, timeout_minutes, harness, token_may_start_jobs, launcher}`:
  `harness` is `<central bucket>/<harness_prefix><entrypoint>`, `token_may_start_jobs` is `granted`,
  `missing`, `unconfirmed` or null (not checked), `launcher` is `{observed, desired}`, the backend
  Space's `COLLAB_JOBS` (observed null: unset, or no Space yet). Blockers may have the addresses
  `token` (a read token), `token.<org>` (a permission missing in that org) and `jobs`.
- status: `observed.identity.token` is `{role, global, scoped, problem}` (the token's role and its
  fine-grained permissions per org, null when unreadable, never its value), and `observed.job_flavors`
  the Jobs hardware names the installed huggingface_hub knows (null when jobs are off).
"""

from __future__ import annotations

import hashlib
from typing import Any

from provision.onboarding.readme import VERIFICATION_INDEX
from provision.plan.compute import ERROR_STAGES, Action, Change, Plan
from provision.plan.desired import JOBS_KEY
from provision.plan.observe import Observed, ObservedSpace

FORMAT_VERSION = 1
SYMBOLS = {"create": "+ create", "update": "~ update", "no-op": "= no-op", "kept": "! kept"}
LONG_VALUE = 48
DIFF_LINES = 40  # lines of a README diff the table shows; --json carries all of it


def show_value(value: Any) -> str:
    """A change's value in a table cell: long strings shortened to their size and a digest."""
    if value is None:
        return "(none)"
    if isinstance(value, dict) and set(value) == {"upload", "delete"}:
        return f"upload {len(value['upload'])} file(s), delete {len(value['delete'])}"
    text = str(value)
    if len(text) > LONG_VALUE:
        return f"<{len(text)} chars, sha256 {hashlib.sha256(text.encode()).hexdigest()[:12]}>"
    return text


def _change_line(change: Change) -> str:
    if change.before is None:
        return f"{change.field}: {show_value(change.after)}"
    return f"{change.field}: {show_value(change.before)} -> {show_value(change.after)}"


def render_plan_text(plan: Plan, *, token_source: str) -> str:
    """The plan as a table, then a summary line; an empty plan says why it is empty."""
    lines = [f"Plan for collab {plan.collab}, as {plan.user} (token from {token_source})", ""]
    width = max((len(a.address) for a in plan.actions), default=0)
    for action in plan.actions:
        lines.append(f"  {SYMBOLS[action.action]:<8}  {action.address.ljust(width)}  {action.id}")
        if action.action == "kept":
            lines.append(f"      {action.reason}")
        lines += [f"      {_change_line(c)}" for c in action.changes]
        if action.diff and action.action != "no-op":
            lines += diff_lines(action.diff)
        if action.details is not None:
            lines += [f"      {line}" for line in details_lines(action)]
    for blocker in plan.blockers:
        lines += ["", f"  ! blocked  {blocker.address}: {blocker.message}", f"      fix: {blocker.fix}"]
    if plan.notes:
        lines += ["", *(f"  note: {n}" for n in plan.notes)]
    lines.append("")
    counts = {kind: sum(a.action == kind for a in plan.actions) for kind in SYMBOLS}
    if plan.blockers:
        lines.append(f"{len(plan.blockers)} blocker(s): nothing can be applied until they are fixed.")
    elif plan.in_sync:
        lines.append(f"No changes: {plan.why_empty()}.")
    else:
        kept = f", {counts['kept']} kept (organizer edit)" if counts["kept"] else ""
        lines.append(
            f"{counts['create']} to create, {counts['update']} to update, {counts['no-op']} unchanged{kept}. "
            "Run `collab apply` to make these changes."
        )
    return "\n".join(lines)


def diff_lines(diff: str) -> list[str]:
    """A diff indented under its action, cut at DIFF_LINES lines (the rest is counted)."""
    all_lines = diff.splitlines()
    shown = [f"      | {line}" for line in all_lines[:DIFF_LINES]]
    if len(all_lines) > DIFF_LINES:
        shown.append(f"      | ... {len(all_lines) - DIFF_LINES} more diff line(s): `collab plan --json` has them all")
    return shown


VERDICTS = {"granted": "yes", "missing": "no", "unconfirmed": "not confirmed (see the notes)", None: "not checked"}


def details_lines(action: Action) -> list[str]:
    """What a check-only action was checked against, for the table (the `jobs` action's own layout)."""
    details = dict(action.details or {})
    if action.resource != "jobs":
        return [f"{key}: {show_value(value)}" for key, value in details.items()]
    launcher = details.get("launcher") or {}
    seen, wanted = launcher.get("observed"), launcher.get("desired")
    shown = f"{JOBS_KEY}={wanted}" + ("" if seen == wanted else f" once applied (now {seen or 'unset'})")
    return [
        f"runs: {details.get('flavor')}, image {details.get('image')}, at most {details.get('timeout_minutes')} min, "
        f"billed to {details.get('namespace')}",
        f"harness: {details.get('harness')}",
        f"token may start Jobs in {details.get('namespace')}: {VERDICTS.get(details.get('token_may_start_jobs'), '?')}",
        f"backend launcher: {shown}",
    ]


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as data."""
    return {
        "format_version": FORMAT_VERSION,
        "collab": plan.collab,
        "user": plan.user,
        "in_sync": plan.in_sync,
        "blocked": bool(plan.blockers),
        "why_empty": plan.why_empty() if plan.in_sync else None,
        "summary": {kind: sum(a.action == kind for a in plan.actions) for kind in SYMBOLS},
        "actions": [a.as_json() for a in plan.actions],
        "blockers": [b.as_json() for b in plan.blockers],
        "notes": list(plan.notes),
    }


def _health(action: Action, observed: Observed) -> str:
    if action.resource == "jobs":
        details = dict(action.details or {})
        may_start = VERDICTS.get(details.get("token_may_start_jobs"), "?")
        return f"{details.get('flavor')} in {details.get('namespace')}, token may start Jobs: {may_start}"
    name = action.address.split(".", 1)[1]
    if action.address == "seed.verification_index" and observed.seed and observed.seed.index_problem:
        return f"malformed: {observed.seed.index_problem}"
    if action.resource == "seed":
        return (
            "kept (organizer edit)"
            if action.action == "kept"
            else ("missing" if action.action == "create" else "present")
        )
    if action.resource == "bucket":
        bucket = observed.buckets[name]
        if not bucket.exists:
            return "missing"
        return f"{'private' if bucket.private else 'public'}, {bucket.total_files} file(s)"
    space: ObservedSpace = observed.spaces[name]
    if not space.exists:
        return "missing"
    return f"{space.stage}, {space.hardware or 'cpu-basic'}"


def healthy(plan: Plan, observed: Observed) -> bool:
    """In sync, no Space in a failed stage, and a verification index the backend can read."""
    index_sound = observed.seed is None or observed.seed.index_problem is None
    return (plan.in_sync and index_sound
            and not any(s.stage in ERROR_STAGES for s in observed.spaces.values() if s.exists))  # fmt: skip


def render_status_text(plan: Plan, observed: Observed) -> str:
    """One line per resource: health, then drift (the fields the plan would change)."""
    lines = [f"Status of collab {plan.collab}, as {plan.user}", ""]
    width = max((len(a.address) for a in plan.actions), default=0)
    for action in plan.actions:
        drift = (
            "in sync" if action.action in ("no-op", "kept") else "drift: " + ", ".join(c.field for c in action.changes)
        )
        lines.append(f"  {action.address.ljust(width)}  {_health(action, observed)}; {drift}")
    for blocker in plan.blockers:
        lines.append(f"  ! {blocker.address}: {blocker.message} (fix: {blocker.fix})")
    lines.append("")
    if healthy(plan, observed):
        lines.append("Healthy and in sync.")
    else:
        lines.append("Not in sync or not healthy: `collab plan` shows the changes, `collab apply` makes them.")
        if observed.seed is not None and observed.seed.index_problem:
            lines.append(f"The verification index needs a fix by hand ({VERIFICATION_INDEX} in the central bucket).")
    return "\n".join(lines)


def status_json(plan: Plan, observed: Observed) -> dict[str, Any]:
    """Status as data: the observed state, the drift per resource, and the verdict."""
    return {
        "format_version": FORMAT_VERSION,
        "collab": plan.collab,
        "healthy": healthy(plan, observed),
        "in_sync": plan.in_sync,
        "observed": observed.as_json(),
        "drift": {a.address: [c.field for c in a.changes] for a in plan.actions},
        "blockers": [b.as_json() for b in plan.blockers],
    }
