"""The plan: desired state and observed state in, the actions still needed out. Pure, no I/O.

Actions come in dependency order (buckets, then the backend Space, then the others, then `jobs`)
and each carries its changes in the order apply makes them. Invariants: an existing resource that
is not marked as this collab's is never changed unless the caller adopts it (an empty unmarked
bucket is adopted: there is nothing in it to lose); secrets are compared by presence and by the
salted fingerprint in a variable, never by value; a plan with blockers (missing admin roles,
missing token permissions, foreign resources, an unknown Jobs flavor) is shown but never applied.
`jobs` is checked, never changed: HF Jobs have no standing configuration, so its action is always
a no-op, with what was checked in its `details`, and what is wrong with it is a blocker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from provision.hub.token_scopes import JOB_WRITE, READ_ROLE, REPO_WRITE, Permission, Verdict, check_permission
from provision.naming import BUCKET_MARKER_PATH, MARKER_KEY, TOOL
from provision.plan.desired import (
    FINGERPRINT_KEY,
    JOBS_KEY,
    SPACE_SDK,
    Desired,
    DesiredBucket,
    DesiredJobs,
    DesiredSpace,
)
from provision.plan.observe import Observed, ObservedBucket, ObservedSpace
from provision.plan.seed import DesiredSeed, ObservedSeed, plan_seed

# "kept": something the organizers changed by hand that the tool leaves alone (nothing to apply).
ActionKind = Literal["create", "update", "no-op", "kept"]
Resource = Literal["bucket", "space", "seed", "jobs"]
ERROR_STAGES = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR"})
HUB_DEFAULT_HARDWARE = "cpu-basic"
HUB_OWN_FILES = frozenset({".gitattributes"})  # the Hub writes it into every new repository
TOKENS_PAGE = "https://huggingface.co/settings/tokens"


@dataclass(frozen=True)
class Change:
    """One setting to change; `field` names it and tells apply which call makes it."""

    field: str
    before: Any
    after: Any

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Action:
    address: str
    resource: Resource
    id: str
    action: ActionKind
    changes: tuple[Change, ...]
    reason: str
    diff: str | None = None  # a unified diff of a text file (the onboarding README), when there is one
    details: Mapping[str, Any] | None = None  # what a check-only resource (`jobs`) was checked against

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "resource": self.resource,
            "id": self.id,
            "action": self.action,
            "reason": self.reason,
            "changes": [c.as_json() for c in self.changes],
        }
        if self.diff is not None:
            out["diff"] = self.diff
        if self.details is not None:
            out["details"] = dict(self.details)
        return out


@dataclass(frozen=True)
class Blocker:
    """Why the plan cannot be applied, and the fix."""

    address: str
    message: str
    fix: str

    def as_json(self) -> dict[str, str]:
        return {"address": self.address, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Plan:
    collab: str
    user: str
    actions: tuple[Action, ...]
    blockers: tuple[Blocker, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def pending(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.action not in ("no-op", "kept"))

    @property
    def in_sync(self) -> bool:
        return not self.pending and not self.blockers

    def why_empty(self) -> str:
        """The sentence an empty plan prints: what was compared and found equal."""
        kinds = [a.resource for a in self.actions]
        seeded = ", as do the central bucket's README, harness and verification index" if "seed" in kinds else ""
        kept = [a.address for a in self.actions if a.action == "kept"]
        kept_note = f" ({', '.join(kept)} kept as the organizers edited it)" if kept else ""
        jobs = ""
        for action in self.actions:
            if action.resource == "jobs":
                confirmed = (action.details or {}).get("token_may_start_jobs") == "granted"
                jobs = ", the Jobs settings check out"
                jobs += "" if confirmed else " (the token's Jobs permission unconfirmed)"
        return (
            f"in sync: {kinds.count('bucket')} bucket(s) and {kinds.count('space')} Space(s) match challenge.yaml"
            f"{seeded}{kept_note}{jobs}, and no org role or token permission is missing for {self.user}"
        )


def compute_plan(desired: Desired, observed: Observed, *, adopt: bool = False, overwrite_readme: bool = False) -> Plan:
    """The actions that bring `observed` to `desired`.

    Args:
        desired: What the spec and the collab's sources ask for.
        observed: What the Hub holds now.
        adopt: Take over existing resources that carry no ownership mark.
        overwrite_readme: Replace an organizer's edit of the onboarding README (else it is kept).

    Returns:
        One action per resource (no-ops included), blockers and notes.
    """
    blockers = _role_blockers(desired, observed)
    notes = list(desired.notes)
    notes += [
        f"the Hub did not report your role in {org}; admin is required" for org in _unknown_roles(desired, observed)
    ]
    token_blockers, token_notes, may_start_jobs = _token_checks(desired, observed)
    blockers += token_blockers
    notes += token_notes
    actions: list[Action] = []
    for bucket in desired.buckets:
        action, blocker = plan_bucket(bucket, observed.buckets[bucket.name], desired.collab, adopt=adopt)
        actions.append(action)
        blockers += [blocker] if blocker else []
    if desired.seed is not None:
        actions += plan_seed_actions(desired.seed, observed.seed or ObservedSeed(), overwrite_readme=overwrite_readme)
    blockers += _dashboard_sign_in(desired)
    for space in desired.spaces:
        action, blocker, note = plan_space(space, observed.spaces[space.name], desired, adopt=adopt)
        actions.append(action)
        blockers += [blocker] if blocker else []
        notes += [note] if note else []
    if desired.jobs is not None:
        action, jobs_blockers, jobs_notes = plan_jobs(desired.jobs, desired, observed, may_start_jobs)
        actions.append(action)
        blockers += jobs_blockers
        notes += jobs_notes
    return Plan(desired.collab, observed.identity.user, tuple(actions), tuple(blockers), tuple(notes))


def plan_seed_actions(seed: DesiredSeed, seen: ObservedSeed, *, overwrite_readme: bool) -> list[Action]:
    """The central bucket's seed as actions (README, harness, verification index); see seed.py."""
    return [
        Action(
            step.address,
            "seed",
            f"{seed.bucket_id}/{step.path}",
            step.action,
            tuple(Change(f, before, after) for f, before, after in step.changes),
            step.reason,
            step.diff,
        )
        for step in plan_seed(seed, seen, overwrite_readme=overwrite_readme)
    ]


def _role_blockers(desired: Desired, observed: Observed) -> list[Blocker]:
    out = []
    user = observed.identity.user
    for org in desired.orgs:
        members = f"https://huggingface.co/organizations/{org}/members"
        if org not in observed.identity.roles:
            out.append(
                Blocker(
                    f"org.{org}",
                    f"{user} is not a member of {org}",
                    f"an admin of {org} invites {user} as admin at {members} (or fix the org name in challenge.yaml)",
                )
            )
        elif observed.identity.roles[org] not in (None, "admin"):
            out.append(
                Blocker(
                    f"org.{org}",
                    f"{user} has role '{observed.identity.roles[org]}' in {org}; admin is required",
                    f"an admin of {org} makes {user} an admin at {members}",
                )
            )
    return out


def _dashboard_sign_in(desired: Desired) -> list[Blocker]:
    """The dashboard Space's README must turn on Hugging Face sign-in for the challenge org, and only it."""
    dashboard = next((s for s in desired.spaces if s.name == "dashboard"), None)
    if dashboard is None:
        return []
    org = desired.orgs[0]
    readme = f"{dashboard.source_dir.name}/README.md"
    wanted = f"`hf_oauth: true` and `hf_oauth_authorized_org: {org}`"
    if dashboard.card is None:
        message = f"{readme} has no front matter that parses as YAML (a value holding ': ' needs quotes)"
        return [Blocker(dashboard.address, message, f"start it with a `---` block holding {wanted}")]
    if dashboard.card.get("hf_oauth") is not True:
        message = f"{readme} does not turn on Hugging Face sign-in (`hf_oauth: true`): the dashboard would not start"
        return [Blocker(dashboard.address, message, f"put {wanted} in its front matter")]
    allowed = dashboard.card.get("hf_oauth_authorized_org")
    if allowed in (org, [org]):
        return []
    who = f"members of {allowed}" if allowed else "anyone with a Hugging Face account"
    message = f"{readme} lets {who} sign in, but the challenge org (challenge.org in challenge.yaml) is {org}"
    return [Blocker(dashboard.address, message, f"set `hf_oauth_authorized_org: {org}` in its front matter")]


def _needed_permissions(desired: Desired) -> list[tuple[Permission, str]]:
    """Each permission the token needs, with the org it is needed in."""
    needs = [(REPO_WRITE, org) for org in desired.orgs]
    if desired.jobs is not None:
        needs.append((JOB_WRITE, desired.jobs.namespace))
    return needs


def _token_checks(desired: Desired, observed: Observed) -> tuple[list[Blocker], list[str], Verdict | None]:
    """Blockers for what the token surely lacks, notes for what could not be confirmed, and the Jobs verdict.

    An org the user is not a member of is left to the role blocker (no token can reach it).
    """
    identity = observed.identity
    needs = _needed_permissions(desired)
    jobs_verdict: Verdict | None = None
    if identity.token.role == READ_ROLE:
        by_permission: dict[Permission, list[str]] = {}
        for permission, org in needs:
            by_permission.setdefault(permission, []).append(org)
        wanted = ", and ".join(f"{p.label} for {' and '.join(orgs)}" for p, orgs in by_permission.items())
        blocker = Blocker(
            "token",
            "the token is a read token: it can create nothing",
            f"create a fine-grained token at {TOKENS_PAGE} with {wanted} (SETUP.md, step 2) and set HF_TOKEN to it",
        )
        return [blocker], [], "missing" if desired.jobs is not None else None
    blockers: list[Blocker] = []
    unconfirmed: dict[tuple[Permission, str], list[str]] = {}
    for permission, org in needs:
        if org not in identity.roles:
            continue
        verdict, why = check_permission(identity.token, permission, org)
        if permission is JOB_WRITE:
            jobs_verdict = verdict
        if verdict == "missing":
            address = "jobs" if permission is JOB_WRITE else f"token.{org}"
            turn_off = "; or turn jobs off in challenge.yaml (jobs.enabled: false)" if permission is JOB_WRITE else ""
            blockers.append(
                Blocker(
                    address,
                    f"the token may not {permission.purpose} in {org}: {why}",
                    f"give the token {permission.label} for {org} ({permission.name}) at {TOKENS_PAGE}{turn_off}",
                )
            )
        elif verdict == "unconfirmed":
            unconfirmed.setdefault((permission, why), []).append(org)
    notes = [
        f"could not confirm the token may {permission.purpose} in {' and '.join(orgs)}: {why}; "
        f"it needs {permission.label} there ({permission.name})"
        for (permission, why), orgs in unconfirmed.items()
    ]
    return blockers, notes, jobs_verdict


def _unknown_roles(desired: Desired, observed: Observed) -> list[str]:
    roles = observed.identity.roles
    return [org for org in desired.orgs if org in roles and roles[org] is None]


def _ownership(address: str, id_: str, mark: str | None, collab: str, *, adopt: bool, empty: bool) -> Blocker | None:
    """None when the resource is ours (or may be taken over), else why not."""
    if mark == collab or (mark is None and (adopt or empty)):
        return None
    if mark is None:
        return Blocker(
            address,
            f"{id_} exists and was not made by collab for {collab}",
            "run with --adopt to take it over, or set another id in challenge.yaml",
        )
    owner = f"collab {mark}" if mark else "an unreadable ownership mark"
    return Blocker(address, f"{id_} belongs to {owner}", "set another id in challenge.yaml")


def plan_bucket(
    bucket: DesiredBucket, seen: ObservedBucket, collab: str, *, adopt: bool
) -> tuple[Action, Blocker | None]:
    """The action for one bucket: create it, or reconcile its visibility and mark."""
    visibility = "private" if bucket.private else "public"
    if not seen.exists:
        created = (
            Change("bucket", None, bucket.id),
            Change("visibility", None, visibility),
            Change("marker", None, BUCKET_MARKER_PATH),
        )
        return Action(bucket.address, "bucket", bucket.id, "create", created, "does not exist"), None
    blocker = _ownership(bucket.address, bucket.id, seen.marker, collab, adopt=adopt, empty=seen.total_files == 0)
    changes: list[Change] = []
    if seen.marker != collab:
        changes.append(Change("marker", None, BUCKET_MARKER_PATH))
    if seen.private != bucket.private:
        changes.append(Change("visibility", _visibility(seen.private), visibility))
    return _update(bucket.address, "bucket", bucket.id, tuple(changes)), blocker


def plan_space(
    space: DesiredSpace, seen: ObservedSpace, desired: Desired, *, adopt: bool
) -> tuple[Action, Blocker | None, str | None]:
    """The action for one Space: create it, or reconcile settings, variables, secrets, code and stage."""
    note = None
    hardware = space.hardware
    sleep_time = space.sleep_time
    if sleep_time is not None and hardware == HUB_DEFAULT_HARDWARE:
        note = f"{space.address}: sleep_time is not configurable on cpu-basic; the Hub's default applies"
        sleep_time = None
    if not seen.exists:
        changes = [Change("space", None, space.id), Change("visibility", None, _visibility(space.private))]
        changes += _variable_changes(space, {}, secrets_present=())
        if hardware != HUB_DEFAULT_HARDWARE:
            changes.append(Change("hardware", None, hardware))
        if sleep_time is not None:
            changes.append(Change("sleep_time", None, sleep_time))
        changes.append(Change("code", None, _code_summary(space.files, [])))
        return Action(space.address, "space", space.id, "create", tuple(changes), "does not exist"), None, note
    mark = seen.variables.get(MARKER_KEY)
    owner = None if mark is None else (mark.removeprefix(f"{TOOL} ") if mark.startswith(f"{TOOL} ") else "")
    blocker = _ownership(space.address, space.id, owner, desired.collab, adopt=adopt, empty=False)
    changes = []
    if seen.private != space.private:
        changes.append(Change("visibility", _visibility(seen.private), _visibility(space.private)))
    changes += _variable_changes(space, seen.variables, secrets_present=seen.secrets)
    if (seen.hardware or HUB_DEFAULT_HARDWARE) != hardware:
        changes.append(Change("hardware", seen.hardware, hardware))
    if sleep_time is not None and seen.sleep_time != sleep_time:
        changes.append(Change("sleep_time", seen.sleep_time, sleep_time))
    upload, delete = _code_diff(space.files, seen.files, space.lfs_files)
    if upload or delete or seen.sdk != SPACE_SDK:
        before = f"{len(seen.files)} file(s), sdk {seen.sdk}"
        changes.append(Change("code", before, _code_summary(upload, delete)))
    restarts = {"code", "hardware"} | {c.field for c in changes if c.field.startswith(("variable ", "secret "))}
    if seen.stage in ERROR_STAGES and not any(c.field in restarts for c in changes):
        changes.append(Change("restart", seen.stage, "RUNNING"))
    return _update(space.address, "space", space.id, tuple(changes)), blocker, note


def _variable_changes(space: DesiredSpace, seen: dict[str, str], *, secrets_present: tuple[str, ...]) -> list[Change]:
    """Variables, then secrets, then the fingerprint: a fingerprint is only written after its secret."""
    changes = [
        Change(f"variable {key}", seen.get(key), value)
        for key, value in space.variables.items()
        if key != FINGERPRINT_KEY and seen.get(key) != value
    ]
    fingerprint = space.variables.get(FINGERPRINT_KEY)
    rotated = fingerprint is not None and seen.get(FINGERPRINT_KEY) != fingerprint
    for name in space.secrets:
        if name not in secrets_present:
            changes.append(Change(f"secret {name}", "absent", "set"))
        elif rotated:
            changes.append(Change(f"secret {name}", "set (another token)", "set"))
    if rotated:
        changes.append(Change(f"variable {FINGERPRINT_KEY}", seen.get(FINGERPRINT_KEY), fingerprint))
    return changes


def _code_diff(
    local: dict[str, str], remote: dict[str, str], lfs: dict[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """What to upload and delete; a file the Hub keeps in LFS matches by its sha256 (`lfs`)."""
    lfs = lfs or {}
    upload = sorted(p for p, blob in local.items() if remote.get(p) not in (blob, lfs.get(p, blob)))
    delete = sorted(p for p in remote if p not in local and p not in HUB_OWN_FILES)
    return upload, delete


def _code_summary(upload: dict[str, str] | list[str], delete: list[str]) -> dict[str, list[str]]:
    return {"upload": sorted(upload), "delete": delete}


def plan_jobs(
    jobs: DesiredJobs, desired: Desired, observed: Observed, may_start: Verdict | None
) -> tuple[Action, list[Blocker], list[str]]:
    """The check-only `jobs` action: always a no-op; what is wrong is a blocker, what is unknown a note.

    Args:
        jobs: The spec's Jobs settings.
        desired: The whole desired state (the harness the seed uploads, the backend's variables).
        observed: The observed state (the known hardware names, the backend Space's variables).
        may_start: Whether the token may start Jobs in `jobs.namespace` (None: not checked, as
            when the user is not a member of the org, which the role blocker reports).
    """
    blockers: list[Blocker] = []
    notes: list[str] = []
    flavors = observed.job_flavors
    if flavors is None:
        notes.append(f"jobs: flavor {jobs.flavor} not checked: the installed huggingface_hub names no Jobs hardware")
    elif jobs.flavor not in flavors:
        blockers.append(
            Blocker(
                "jobs",
                f"flavor '{jobs.flavor}' is not a Jobs hardware name the installed huggingface_hub knows",
                f"set jobs.flavor in challenge.yaml to one of: {', '.join(flavors)}",
            )
        )
    if desired.seed is not None and jobs.entrypoint not in desired.seed.harness:
        blockers.append(
            Blocker(
                "jobs",
                f"the harness seeded into {jobs.bucket} has no {jobs.entrypoint}: every Job would fail",
                "set jobs.entrypoint (or jobs.harness_prefix) in challenge.yaml to the challenge type's harness file",
            )
        )
    backend = next((s for s in desired.spaces if s.name == "backend"), None)
    wanted = backend.variables.get(JOBS_KEY) if backend else None
    seen_backend = observed.spaces.get("backend")
    seen = seen_backend.variables.get(JOBS_KEY) if seen_backend and seen_backend.exists else None
    details = {
        "namespace": jobs.namespace,
        "image": jobs.image,
        "flavor": jobs.flavor,
        "timeout_minutes": jobs.timeout_minutes,
        "harness": jobs.harness,
        "token_may_start_jobs": may_start,
        "launcher": {"observed": seen, "desired": wanted},
    }
    if blockers or may_start == "missing":
        verdict = "blocked: see the blockers"
    elif seen != wanted:
        verdict = f"apply sets {JOBS_KEY}={wanted} on space.backend (now {seen or 'unset'})"
    elif may_start != "granted":
        verdict = "the flavor and the backend's launcher check out; the token's Jobs permission is not confirmed"
    else:
        verdict = "the token, the flavor and the backend's launcher check out"
    reason = f"Jobs need nothing created on the Hub; {verdict}"
    return Action("jobs", "jobs", jobs.namespace, "no-op", (), reason, details=details), blockers, notes


def _visibility(private: bool | None) -> str | None:
    return None if private is None else ("private" if private else "public")


def _update(address: str, resource: Resource, id_: str, changes: tuple[Change, ...]) -> Action:
    if not changes:
        return Action(address, resource, id_, "no-op", (), "matches the spec")
    reason = "differs from the spec: " + ", ".join(c.field for c in changes)
    return Action(address, resource, id_, "update", changes, reason)
