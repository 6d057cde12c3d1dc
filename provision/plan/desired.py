"""What a collab's Hub resources should look like: derived from the loaded spec, in this one place.

Nothing here is typed twice: ids, hardware and sleep times are the spec's (already defaulted by
the loader), and the Space variable `COLLAB_SPEC` is the loader's fully defaulted document. The
only values decided here are the kit's own conventions: where the ownership marker goes (its
names are `provision.naming`'s), which Spaces hold the token, their visibility, which source files
are uploaded, and the backend's launcher (`COLLAB_JOBS`: `hub` when jobs are on, `off` when they
are not, never left to its default; `COLLAB_SUBMISSION_CONFIG`: the challenge type's submission
config file, which ruling predicates read, when the type names one; `COLLAB_DENYLIST`: the type's
denylist file inside its harness folder, its standing rules). `COLLAB_JOBS_ARGS` is the challenge
type's `job_args` of this spec (e.g. the perplexity cap), derived here with `COLLAB_SPEC`, so the
two never disagree. The central bucket's seed is the seed module's to describe.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision.challenge_types import load_type
from provision.errors import ProvisionError
from provision.naming import MARKER_KEY, TOOL, marker_value
from provision.plan.seed import DesiredSeed, desired_seed
from provision.spec import LoadedSpec

SPEC_KEY = "COLLAB_SPEC"
FINGERPRINT_KEY = "COLLAB_TOKEN_FINGERPRINT"
CONFIG_KEY = "COLLAB_SUBMISSION_CONFIG"  # the type's submission config file (ruling predicates), when it has one
DENYLIST_KEY = "COLLAB_DENYLIST"  # the type's denylist inside its harness folder (standing rules), when it has one
JOBS_KEY = "COLLAB_JOBS"  # the backend's launcher: "hub" (HF Jobs) when jobs are on, "off" when not
JOBS_ARGS_KEY = "COLLAB_JOBS_ARGS"  # the harness arguments every job passes from the spec (the type's job_args)
TOKEN_SECRET = "HF_TOKEN"  # noqa: S105  # the secret's name, not a value
SPACE_SDK = "docker"
# Never uploaded: caches, and anything that may hold credentials. Same patterns for the local
# listing and for upload_folder, so what the plan compares is what apply uploads.
_SECRET_FILES = (".env", ".env.*")
IGNORED_SOURCES: tuple[str, ...] = (
    "*__pycache__*",
    "*.pyc",
    "*.pytest_cache*",
    "*.mypy_cache*",
    "*.ruff_cache*",
    *_SECRET_FILES,
    *(f"*/{p}" for p in _SECRET_FILES),
)


class SourcesError(ProvisionError):
    """A Space's source folder is missing from the collab."""


@dataclass(frozen=True)
class DesiredBucket:
    name: str  # "central" | "audit"
    id: str
    private: bool

    @property
    def address(self) -> str:
        return f"bucket.{self.name}"


@dataclass(frozen=True)
class DesiredSpace:
    name: str  # "backend" | "dashboard" | "eval"
    id: str
    private: bool
    hardware: str
    sleep_time: int | None
    variables: dict[str, str]
    secrets: tuple[str, ...]
    source_dir: Path
    files: dict[str, str]  # path -> git blob id of the local source
    lfs_files: dict[str, str] = field(default_factory=dict)  # path -> "lfs:" + sha256, as a file in LFS reads
    card: dict[str, Any] | None = None  # its README front matter (its settings on the Hub); None if unreadable
    bundled: tuple[str, ...] = ()  # folders of the collab uploaded beside the source, under their own names

    @property
    def address(self) -> str:
        return f"space.{self.name}"


@dataclass(frozen=True)
class DesiredJobs:
    """HF Jobs as the backend launches them. Nothing to create: the plan only checks them."""

    namespace: str  # the org the Jobs run in, which pays for them: the challenge org
    image: str
    flavor: str
    timeout_minutes: int
    bucket: str  # the central bucket, where the harness is seeded
    entrypoint: str  # the file the Job runs, as a path in the bucket (`harness_prefix` + `entrypoint`)

    @property
    def address(self) -> str:
        return "jobs"

    @property
    def harness(self) -> str:
        return f"{self.bucket}/{self.entrypoint}"


@dataclass(frozen=True)
class Desired:
    collab: str  # "{org}/{slug}", what the ownership marks name
    orgs: tuple[str, ...]  # where the token's user must be an admin
    buckets: tuple[DesiredBucket, ...]
    spaces: tuple[DesiredSpace, ...]
    notes: tuple[str, ...] = field(default=())
    seed: DesiredSeed | None = None  # the central bucket's seeded files (onboarding README, harness, index)
    jobs: DesiredJobs | None = None  # None when the spec turns jobs off

    @property
    def marker(self) -> str:
        return marker_value(self.collab)


def token_fingerprint(token: str, space_id: str) -> str:
    """A salted hash of the token, so rotation is visible without the value ever leaving the machine.

    The salt is the Space id (two Spaces never show the same fingerprint); 16 hex digits cannot
    be turned back into a token of ~160 random bits.
    """
    return hashlib.sha256(f"{TOOL}:token:{space_id}:{token}".encode()).hexdigest()[:16]


def git_blob_id(data: bytes) -> str:
    """The id git and the Hub (`blobId`) give a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


LFS_PREFIX = "lfs:"


def source_files(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Every file of a Space's source folder that is uploaded, with its git blob id and its LFS id.

    The Hub decides which files it keeps in LFS and then reports the pointer's blob id, so a file
    is compared by both: its git blob id, and `lfs:` with its sha256.
    """
    blobs: dict[str, str] = {}
    lfs: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        name = rel.as_posix()
        if not path.is_file() or ".git" in rel.parts or any(fnmatch.fnmatch(name, p) for p in IGNORED_SOURCES):
            continue
        data = path.read_bytes()
        blobs[name] = git_blob_id(data)
        lfs[name] = LFS_PREFIX + hashlib.sha256(data).hexdigest()
    return blobs, lfs


def space_card(folder: Path) -> dict[str, Any] | None:
    """The front matter of a Space's `README.md` (the YAML between its first two `---` lines).

    None when the file, or a front matter that parses as a YAML mapping, is missing.
    """
    try:
        text = (folder / "README.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    head, sep, rest = text.partition("\n")
    body, end, _ = rest.partition("\n---")
    if head.strip() != "---" or not sep or not end:
        return None
    try:
        card = yaml.safe_load(body)
    except yaml.YAMLError:
        return None
    return card if isinstance(card, dict) else None


def spec_json(loaded: LoadedSpec) -> str:
    """The value of COLLAB_SPEC: the fully defaulted document, compact and stable."""
    return json.dumps(loaded.document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def jobs_args_json(loaded: LoadedSpec) -> str:
    """The value of COLLAB_JOBS_ARGS: the type's `job_args` of this spec, as a JSON list.

    Raises:
        ChallengeTypeError: the type is not registered, or its hook fails on this spec.
    """
    from provision.challenge_types import load_type  # deferred: loading a type imports its package

    return json.dumps(list(load_type(loaded.spec.challenge.type).job_arguments(loaded.spec)))


def desired_state(loaded: LoadedSpec, collab_dir: Path, token: str) -> Desired:
    """The resources a rendered collab needs on the Hub.

    Args:
        loaded: The loaded spec.
        collab_dir: The collab folder holding the Space sources (`backend/`, `dashboard/`, `eval/`).
        token: The organizers' token; only its salted fingerprint ends up in the result.

    Returns:
        Buckets and Spaces in dependency order (buckets first; the backend before the others), the
        central bucket's seed, and the Jobs settings the plan checks (when jobs are on).

    Raises:
        SourcesError: when `backend/` is missing.
        ChallengeTypeError, SeedError: when the challenge type cannot render the README or lacks its harness.
    """
    spec = loaded.spec
    collab = f"{spec.challenge.org}/{spec.challenge.slug}"
    buckets = (
        DesiredBucket("central", spec.storage.central_bucket, spec.storage.central_visibility == "private"),
        DesiredBucket("audit", spec.storage.audit_bucket, True),
    )
    notes: list[str] = []
    wanted = [("backend", spec.spaces.backend, False, True)]
    if (collab_dir / "dashboard").is_dir():
        wanted.append(("dashboard", spec.spaces.dashboard, False, False))
    else:
        notes.append("no dashboard/ in the collab: the dashboard Space is not planned")
    if spec.verification.mode == "eval-space":
        if (collab_dir / "eval").is_dir():
            wanted.append(("eval", spec.spaces.eval, True, True))
        else:
            notes.append("verification.mode is eval-space but the collab has no eval/: the eval Space is not planned")
    if not (collab_dir / "backend").is_dir():
        raise SourcesError(
            f"no backend/ folder in {collab_dir}: the backend Space's code comes from it\n"
            "    hint: run in a rendered collab (`copier copy`), or pass its folder"
        )
    kind = load_type(spec.challenge.type)
    config, denylist = kind.submission_config, kind.denylist
    spaces = []
    for name, space, private, holds_token in wanted:
        variables = {MARKER_KEY: marker_value(collab), SPEC_KEY: spec_json(loaded)}
        if name == "backend":
            variables[JOBS_KEY] = "hub" if spec.jobs.enabled else "off"
            if config is not None:
                variables[CONFIG_KEY] = config
            if spec.jobs.enabled:
                variables[JOBS_ARGS_KEY] = jobs_args_json(loaded)
            if denylist is not None:
                variables[DENYLIST_KEY] = denylist
        if holds_token:
            variables[FINGERPRINT_KEY] = token_fingerprint(token, space.id)
        source = collab_dir / name
        files, lfs_files = source_files(source)
        # The eval Space runs the type's cheap check: the collab's type package, provision/ and the
        # schemas it reads go with it.
        bundled = tuple(b for b in ("provision", "schemas", f"challenge_{spec.challenge.type}")
                        if name == "eval" and (collab_dir / b).is_dir())  # fmt: skip
        for folder in bundled:
            more, more_lfs = source_files(collab_dir / folder)
            files.update({f"{folder}/{k}": v for k, v in more.items()})
            lfs_files.update({f"{folder}/{k}": v for k, v in more_lfs.items()})
        spaces.append(
            DesiredSpace(
                name=name,
                id=space.id,
                private=private,
                hardware=space.hardware,
                sleep_time=space.sleep_time,
                variables=variables,
                secrets=(TOKEN_SECRET,) if holds_token else (),
                source_dir=source,
                files=files,
                lfs_files=lfs_files,
                card=space_card(source),
                bundled=bundled,
            )
        )
    orgs = (spec.challenge.org, spec.challenge.admin_org)
    seed = desired_seed(loaded, IGNORED_SOURCES)
    jobs = None
    if spec.jobs.enabled:
        prefix = spec.jobs.harness_prefix.rstrip("/") + "/"
        jobs = DesiredJobs(
            namespace=spec.challenge.org,
            image=spec.jobs.image,
            flavor=spec.jobs.flavor,
            timeout_minutes=spec.jobs.timeout_minutes,
            bucket=spec.storage.central_bucket,
            entrypoint=prefix + spec.jobs.entrypoint,
        )
    return Desired(collab, orgs, buckets, tuple(spaces), tuple(notes), seed, jobs)
