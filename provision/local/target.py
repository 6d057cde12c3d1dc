"""The local target: the collab's buckets as folders in `.collab/hub/`, people as a local identity file.

The same desired state as the Hub target (`desired.desired_state`: the bucket ids and their
visibility come from the spec, once) and the same plan logic for buckets (`plan.plan_bucket`:
ownership marks, adoption, visibility); only the adapter differs. The folder hub has the layout
the backend's folder storage reads (`buckets/<namespace>/<name>/`); a bucket's visibility, which a
folder cannot carry, is kept beside it in `bucket-settings/<namespace>/<name>.json`.

The Hub's identities are stood in for by `.collab/identities.json` (`{token: {"user", "orgs"}}`,
what the backend's local identity reads): one organizer, an admin of both orgs, and a few
participants, contributors of the challenge org. Tokens are generated once with `secrets`, kept
across runs, written with mode 0600 and never printed.

When the challenge type has a stand-in private set (`private_sample`: Gemma's few prompts other
than the public sample's), the local target also seeds it into the audit bucket at
`verification.private_set`, so a local rehearsal of verification re-runs on a private set; a
folder there that holds any file is the organizers' and is never touched. The Hub target never
seeds it: there the organizers upload the real private set.

Invariants: plan reads the folders and writes nothing; apply makes exactly the plan's changes and a
fresh plan after it is empty; nothing is ever deleted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.challenge_types import load_type
from provision.errors import ProvisionError
from provision.local.folder_hub import FolderBuckets
from provision.naming import BUCKET_MARKER_PATH, TOOL
from provision.onboarding.readme import LocalSite, render_readme
from provision.paths import spec_path
from provision.plan.compute import ActionKind, Blocker, Change, plan_bucket, plan_seed_actions
from provision.plan.desired import Desired, DesiredBucket, desired_state
from provision.plan.observe import ObservedBucket
from provision.plan.seed import ObservedSeed, apply_seed, observe_seed
from provision.plan.views import SYMBOLS, diff_lines, show_value
from provision.spec import LoadedSpec, load_spec

STATE_DIR = ".collab"  # git-ignored in every rendered collab
HUB_DIR = f"{STATE_DIR}/hub"
IDENTITY_FILE = f"{STATE_DIR}/identities.json"
BACKEND_URL_FILE = f"{STATE_DIR}/backend-url"
ORGANIZER = "organizer"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
PARTICIPANTS = 4
IDENTITY_MODE = 0o600
PRIVATE_SET = "private_set"  # the plan address of the stand-in private set
_TMP_PREFIX = ".collab-tmp-"  # the backend's folder storage skips files named like this


class LocalTargetError(ProvisionError):
    """The folder hub or the identity file cannot be read or written."""


@dataclass(frozen=True)
class LocalAction:
    """One resource of the local target and the changes it needs (a bucket, or the identity file)."""

    address: str
    id: str
    action: ActionKind
    changes: tuple[Change, ...]
    reason: str
    diff: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "id": self.id,
            "action": self.action,
            "reason": self.reason,
            "changes": [c.as_json() for c in self.changes],
            "diff": self.diff,
        }


@dataclass(frozen=True)
class LocalPlan:
    collab: str
    collab_dir: Path
    actions: tuple[LocalAction, ...]
    blockers: tuple[Blocker, ...] = ()

    @property
    def pending(self) -> tuple[LocalAction, ...]:
        return tuple(a for a in self.actions if a.action in ("create", "update"))

    @property
    def in_sync(self) -> bool:
        return not self.pending and not self.blockers


@dataclass(frozen=True)
class LocalTarget:
    """Where a collab's local target lives, and what it should hold."""

    collab_dir: Path
    loaded: LoadedSpec
    desired: Desired
    participants: int = PARTICIPANTS

    @property
    def hub_dir(self) -> Path:
        return self.collab_dir / HUB_DIR

    @property
    def identity_file(self) -> Path:
        return self.collab_dir / IDENTITY_FILE

    def bucket_dir(self, bucket_id: str) -> Path:
        return self.hub_dir / "buckets" / bucket_id

    def settings_file(self, bucket_id: str) -> Path:
        return self.hub_dir / "bucket-settings" / f"{bucket_id}.json"

    def users(self) -> dict[str, dict[str, str]]:
        """Every local user and their org roles: the organizer and the participants."""
        spec = self.loaded.spec
        out = {ORGANIZER: {spec.challenge.org: "admin", spec.challenge.admin_org: "admin"}}
        for n in range(1, self.participants + 1):
            out[f"participant-{n}"] = {spec.challenge.org: "contributor"}
        return out


def local_target(target: str | Path, *, participants: int = PARTICIPANTS) -> LocalTarget:
    """Load the spec of the collab at `target` and derive its local resources.

    Raises:
        SpecError: the spec does not load. SourcesError: the collab has no backend/.
    """
    loaded = load_spec(target)
    collab_dir = spec_path(target).parent.resolve()
    # No token exists in local mode; only the buckets and the collab name are used from the result.
    desired = desired_state(loaded, collab_dir, token="")
    local = LocalTarget(collab_dir, loaded, desired, participants)
    return serving_at(local, served_url(collab_dir))


def backend_url(host: str, port: int) -> str:
    """The address of a backend `collab up` runs."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def served_url(collab_dir: Path) -> str:
    """The backend address the local README names: the last `collab up`'s, else the default one."""
    try:
        url = (collab_dir / BACKEND_URL_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        url = ""
    return url if url.startswith("http://") else backend_url(DEFAULT_HOST, DEFAULT_PORT)


def remember_url(target: LocalTarget, url: str) -> LocalTarget:
    """Record the address `collab up` serves, so plan and status expect the README seeded for it."""
    _write_file(target.collab_dir / BACKEND_URL_FILE, url + "\n")
    return serving_at(target, url)


def serving_at(target: LocalTarget, url: str) -> LocalTarget:
    """The target whose seeded README is the local one: the backend at `url`, `collab bucket`, local tokens.

    It names the address of the last `collab up` (`.collab/backend-url`), or the default one.
    """
    seed = target.desired.seed
    if seed is None:
        return target
    spec = target.loaded.spec
    kind = load_type(spec.challenge.type)
    site = LocalSite(url, str(target.collab_dir), IDENTITY_FILE, kind.cpu_args)
    readme = render_readme(spec, kind.task_section(spec), site)
    desired = dataclasses.replace(target.desired, seed=dataclasses.replace(seed, readme=readme))
    return dataclasses.replace(target, desired=desired)


# -- read back ------------------------------------------------------------------------------


def observe_bucket(target: LocalTarget, bucket: DesiredBucket) -> ObservedBucket:
    """A bucket folder's existence, recorded visibility, size and ownership mark."""
    folder = target.bucket_dir(bucket.id)
    if not folder.is_dir():
        return ObservedBucket(bucket.id, exists=False)
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(_TMP_PREFIX)]
    private = _read_json(target.settings_file(bucket.id)).get("private")
    marker: str | None = None
    mark_file = folder / BUCKET_MARKER_PATH
    if mark_file.is_file():
        collab = _read_json(mark_file).get("collab")
        marker = collab if isinstance(collab, str) else ""
    return ObservedBucket(bucket.id, True, private if isinstance(private, bool) else None, len(files), marker)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_identities(path: Path) -> dict[str, dict[str, Any]] | None:
    """The identity file as `{token: {"user", "orgs"}}`; None when it does not exist.

    Raises:
        LocalTargetError: the file exists but is not such a mapping.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LocalTargetError(f"{path} is not readable JSON ({exc}); delete it and run apply again") from None
    if not isinstance(raw, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("user"), str) and isinstance(v.get("orgs", {}), dict)
        for v in raw.values()
    ):
        raise LocalTargetError(f'{path} is not {{token: {{"user", "orgs"}}}}; delete it and run apply again')
    return raw


def local_tokens(target: LocalTarget) -> dict[str, str]:
    """Each local user's token, by user name (for scripts acting as those users; never print them)."""
    table = read_identities(target.identity_file) or {}
    return {entry["user"]: token for token, entry in table.items()}


# -- plan -----------------------------------------------------------------------------------


def plan_local(target: LocalTarget, *, adopt: bool = False, overwrite_readme: bool = False) -> LocalPlan:
    """The changes that bring the folder hub, its seed files and the identity file to the spec.

    Reads, writes nothing. The central bucket is seeded by the same code as on the Hub (README
    with its ownership rule, harness, verification index), through the folder hub.
    """
    actions: list[LocalAction] = []
    blockers: list[Blocker] = []
    central_exists = False
    for bucket in target.desired.buckets:
        seen = observe_bucket(target, bucket)
        central_exists = central_exists or (bucket.name == "central" and seen.exists)
        action, blocker = plan_bucket(bucket, seen, target.desired.collab, adopt=adopt)
        actions.append(LocalAction(action.address, action.id, action.action, action.changes, action.reason))
        blockers += [blocker] if blocker else []
    seed = target.desired.seed
    if seed is not None:
        observed = observe_seed(FolderBuckets(target.hub_dir), "", seed) if central_exists else ObservedSeed()
        for a in plan_seed_actions(seed, observed, overwrite_readme=overwrite_readme):
            actions.append(LocalAction(a.address, a.id, a.action, a.changes, a.reason, a.diff))
    private = _plan_private_set(target)
    actions += [private] if private is not None else []
    actions.append(_plan_identities(target))
    return LocalPlan(target.desired.collab, target.collab_dir, tuple(actions), tuple(blockers))


def _plan_identities(target: LocalTarget) -> LocalAction:
    path, address = target.identity_file, "identities"
    table = read_identities(path)
    wanted = target.users()
    if table is None:
        changes = tuple(Change(f"user {u}", None, _roles_text(o)) for u, o in wanted.items())
        return LocalAction(address, IDENTITY_FILE, "create", changes, "does not exist")
    have = {entry["user"]: dict(entry.get("orgs", {})) for entry in table.values()}
    changes_list = [
        Change(f"user {u}", None if u not in have else _roles_text(have[u]), _roles_text(orgs))
        for u, orgs in wanted.items()
        if have.get(u) != orgs
    ]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != IDENTITY_MODE:
        changes_list.append(Change("mode", oct(mode), oct(IDENTITY_MODE)))
    changes = tuple(changes_list)
    if not changes:
        return LocalAction(address, IDENTITY_FILE, "no-op", (), "matches the spec")
    return LocalAction(
        address, IDENTITY_FILE, "update", changes, "differs from the spec: " + ", ".join(c.field for c in changes)
    )


def private_sample_files(target: LocalTarget) -> dict[str, Path]:
    """The type's stand-in private set by audit-bucket path (under `verification.private_set`); empty when none."""
    spec = target.loaded.spec
    folder = load_type(spec.challenge.type).private_sample_dir
    if folder is None or not folder.is_dir():
        return {}
    prefix = spec.verification.private_set.rstrip("/") + "/"
    files = (p for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith("."))
    return {prefix + p.relative_to(folder).as_posix(): p for p in files}


def _plan_private_set(target: LocalTarget) -> LocalAction | None:
    """Seed the stand-in private set into the audit bucket, unless its folder there holds a file already."""
    files = private_sample_files(target)
    if not files:
        return None
    spec = target.loaded.spec
    bucket, prefix = spec.storage.audit_bucket, spec.verification.private_set.rstrip("/") + "/"
    where = f"{bucket}/{prefix}"
    folder = target.bucket_dir(bucket) / prefix
    held = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    if held:
        return LocalAction(PRIVATE_SET, where, "no-op", (), f"holds {held} file(s): a private set is never overwritten")
    kind = load_type(spec.challenge.type)
    change = Change("files", None, f"{len(files)} file(s) of {kind.package}/{kind.private_sample}/")
    return LocalAction(PRIVATE_SET, where, "create", (change,), "a stand-in private set for local rehearsals")


def _roles_text(orgs: dict[str, str]) -> str:
    return ", ".join(f"{role} of {org}" for org, role in sorted(orgs.items()))


# -- apply ----------------------------------------------------------------------------------


def apply_local(target: LocalTarget, plan: LocalPlan, *, progress: Callable[[str], None] = print) -> int:
    """Make the plan's changes; returns how many were made.

    Raises:
        LocalTargetError: the plan is blocked, or a folder or file cannot be written.
    """
    if plan.blockers:
        raise LocalTargetError("the plan is blocked: " + "; ".join(b.message for b in plan.blockers))
    done = 0
    try:
        for action in plan.pending:
            progress(f"{action.address} ({action.id}): {action.action}")
            if action.address == "identities":
                _write_identities(target)
                done += len(action.changes)
                progress(f"  {len(action.changes)} change(s): done")
                continue
            if action.address == PRIVATE_SET:
                files = private_sample_files(target)
                FolderBuckets(target.hub_dir).batch_bucket_files(
                    target.loaded.spec.storage.audit_bucket, add=[(path, name) for name, path in files.items()]
                )
                done += 1
                progress(f"  {len(files)} file(s): done")
                continue
            if action.address.startswith("seed.") and target.desired.seed is not None:
                for change in action.changes:
                    apply_seed(FolderBuckets(target.hub_dir), "", action.address, target.desired.seed,
                               change.field, change.after)  # fmt: skip
                    done += 1
                    progress(f"  {change.field}: done")
                continue
            for change in action.changes:
                _bucket_step(target, action, change)
                done += 1
                progress(f"  {change.field}: done")
    except OSError as exc:
        raise LocalTargetError(
            f"cannot write the local target: {exc}\n    {done} change(s) were made; fix the cause and apply again"
        ) from None
    return done


def _bucket_step(target: LocalTarget, action: LocalAction, change: Change) -> None:
    bucket = next(b for b in target.desired.buckets if b.address == action.address)
    if change.field == "bucket":
        target.bucket_dir(bucket.id).mkdir(parents=True, exist_ok=True)
    elif change.field == "visibility":
        _write_file(target.settings_file(bucket.id), json.dumps({"private": bucket.private}) + "\n")
    elif change.field == "marker":
        mark = json.dumps({"managed_by": TOOL, "collab": target.desired.collab}, indent=2) + "\n"
        _write_file(target.bucket_dir(bucket.id) / BUCKET_MARKER_PATH, mark)
    else:
        raise ValueError(f"unknown bucket change {change.field!r}")


def _write_identities(target: LocalTarget) -> None:
    """Add missing users with fresh tokens, set roles, keep every existing token; mode 0600."""
    table = read_identities(target.identity_file) or {}
    by_user = {entry["user"]: token for token, entry in table.items()}
    for user, orgs in target.users().items():
        token = by_user.get(user) or f"collab-local-{secrets.token_urlsafe(24)}"
        table[token] = {"user": user, "orgs": orgs}
    _write_file(target.identity_file, json.dumps(table, indent=2, sort_keys=True) + "\n", mode=IDENTITY_MODE)


def _write_file(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write atomically (a temporary file renamed into place) with the given mode from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- views ----------------------------------------------------------------------------------


def render_local_plan(plan: LocalPlan) -> str:
    """The plan as a table and a summary line, like the Hub target's; no token ever appears."""
    where = f"{HUB_DIR}/ in {plan.collab_dir.name}"
    lines = [f"Plan for collab {plan.collab}, local target ({where})", ""]
    width = max((len(a.address) for a in plan.actions), default=0)
    for action in plan.actions:
        lines.append(f"  {SYMBOLS[action.action]:<8}  {action.address.ljust(width)}  {action.id}")
        for c in action.changes:
            before = "" if c.before is None else f"{show_value(c.before)} -> "
            lines.append(f"      {c.field}: {before}{show_value(c.after)}")
        if action.action == "kept":
            lines.append(f"      {action.reason}")
        if action.diff:
            lines += diff_lines(action.diff)
    for blocker in plan.blockers:
        lines += ["", f"  ! blocked  {blocker.address}: {blocker.message}", f"      fix: {blocker.fix}"]
    lines.append("")
    counts = {kind: sum(a.action == kind for a in plan.actions) for kind in SYMBOLS}
    if plan.blockers:
        lines.append(f"{len(plan.blockers)} blocker(s): nothing can be applied until they are fixed.")
    elif plan.in_sync:
        buckets = sum(a.address.startswith("bucket.") for a in plan.actions)
        kept = [a.address for a in plan.actions if a.action == "kept"]
        note = f" ({', '.join(kept)} kept as the organizers edited it)" if kept else ""
        lines.append(
            f"No changes: in sync: {buckets} bucket folder(s), the central bucket's README, harness and "
            f"verification index, and the identity file match challenge.yaml{note}."
        )
    else:
        lines.append(
            f"{counts['create']} to create, {counts['update']} to update, {counts['no-op']} unchanged. "
            "Run `collab apply --target local` to make these changes."
        )
    return "\n".join(lines)


def local_plan_json(plan: LocalPlan) -> dict[str, Any]:
    """The local plan as data (`format_version` 1, the Hub plan's shape)."""
    return {
        "format_version": 1,
        "target": "local",
        "collab": plan.collab,
        "in_sync": plan.in_sync,
        "blocked": bool(plan.blockers),
        "summary": {kind: sum(a.action == kind for a in plan.actions) for kind in SYMBOLS},
        "actions": [a.as_json() for a in plan.actions],
        "blockers": [b.as_json() for b in plan.blockers],
    }
