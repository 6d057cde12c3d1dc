"""Read back the live state of every resource a collab needs: no state file, the Hub is the truth.

Invariant: a resource is recorded as absent only when the Hub answers "not found"
(`BucketNotFoundError`, `RepositoryNotFoundError`); any other error stops the read with a
`HubAccessError` and its hint. The observed state is plain data, so plan tests can write it
down in case files (`from_json`) instead of building a Hub. Jobs have no standing configuration on
the Hub: what the plan checks about them is read offline (the token's scopes come with whoami, the
hardware names with the installed huggingface_hub, the launcher with the backend Space's variables).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.hub.client import HubClient, hub_errors
from provision.hub.credentials import Identity
from provision.naming import BUCKET_MARKER_PATH
from provision.plan.desired import LFS_PREFIX, Desired, DesiredBucket, DesiredSpace
from provision.plan.seed import ObservedSeed, observe_seed


@dataclass(frozen=True)
class ObservedBucket:
    id: str
    exists: bool
    private: bool | None = None
    total_files: int = 0
    marker: str | None = None  # the `collab` named in .collab/deployment.json, "" when unreadable


@dataclass(frozen=True)
class ObservedSpace:
    id: str
    exists: bool
    sdk: str | None = None
    private: bool | None = None
    stage: str | None = None
    hardware: str | None = None  # requested if a request is pending, else current
    sleep_time: int | None = None
    variables: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # path -> blob id


@dataclass(frozen=True)
class Observed:
    identity: Identity
    buckets: dict[str, ObservedBucket]  # by desired name: central, audit
    spaces: dict[str, ObservedSpace]  # by desired name: backend, dashboard, eval
    seed: ObservedSeed | None = None  # the central bucket's seeded files; None when it was not read
    # The Jobs hardware names the installed huggingface_hub knows (`JobHardware`); None when jobs
    # are off or the library names none.
    job_flavors: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity.as_json(),
            "buckets": {k: asdict(v) for k, v in self.buckets.items()},
            "spaces": {k: {**asdict(v), "secrets": list(v.secrets)} for k, v in self.spaces.items()},
            "seed": self.seed.as_json() if self.seed else None,
            "job_flavors": None if self.job_flavors is None else list(self.job_flavors),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Observed:
        """Build observed state from its JSON form (what `as_json` writes; case files use it)."""
        identity = Identity.from_json(data["identity"])
        buckets = {k: ObservedBucket(**v) for k, v in data.get("buckets", {}).items()}
        spaces = {k: ObservedSpace(**{**v, "secrets": tuple(v.get("secrets", ()))}) for k, v in data["spaces"].items()}
        seed = ObservedSeed.from_json(data["seed"]) if data.get("seed") is not None else None
        flavors = data.get("job_flavors")
        return cls(identity, buckets, spaces, seed, None if flavors is None else tuple(flavors))


def observe(hub: HubClient, token: str, identity: Identity, desired: Desired) -> Observed:
    """Read every resource `desired` names.

    Args:
        hub: The Hub client.
        token: The token's value, sent with every call.
        identity: What `check_identity` returned.
        desired: The resources to read.

    Returns:
        The observed state, keyed like `desired`.

    Raises:
        HubAccessError: on any error other than "not found".
    """
    buckets = {b.name: observe_bucket(hub, token, b) for b in desired.buckets}
    spaces = {s.name: observe_space(hub, token, s) for s in desired.spaces}
    seed = None
    central = buckets.get("central")
    if desired.seed is not None and central is not None and central.exists:
        seed = observe_seed(hub, token, desired.seed)
    return Observed(identity, buckets, spaces, seed, known_job_flavors() if desired.jobs else None)


def known_job_flavors() -> tuple[str, ...] | None:
    """The Jobs hardware names of the installed huggingface_hub (offline: the Hub is not asked).

    The library sends any flavor as it is; its `JobHardware` enum is what it knows the Hub offers.
    """
    try:
        from huggingface_hub import JobHardware
    except ImportError:  # a library without the enum: the flavor cannot be checked offline
        return None
    return tuple(str(h.value) for h in JobHardware)


def observe_bucket(hub: HubClient, token: str, bucket: DesiredBucket) -> ObservedBucket:
    """A bucket's visibility, size and ownership mark."""
    from huggingface_hub.errors import BucketNotFoundError

    try:
        with hub_errors(f"read bucket {bucket.id}", absent=(BucketNotFoundError,)):
            info = hub.bucket_info(bucket.id, token=token)
    except BucketNotFoundError:
        return ObservedBucket(bucket.id, exists=False)
    marker = _read_marker(hub, token, bucket.id) if info.total_files else None
    return ObservedBucket(bucket.id, True, bool(info.private), int(info.total_files), marker)


def _read_marker(hub: HubClient, token: str, bucket_id: str) -> str | None:
    with hub_errors(f"read {BUCKET_MARKER_PATH} in bucket {bucket_id}"):
        if not list(hub.get_bucket_paths_info(bucket_id, [BUCKET_MARKER_PATH], token=token)):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "deployment.json"
            hub.download_bucket_files(bucket_id, [(BUCKET_MARKER_PATH, dest)], token=token)
            try:
                collab = json.loads(dest.read_text(encoding="utf-8")).get("collab")
            except (ValueError, AttributeError):
                return ""
    return collab if isinstance(collab, str) else ""


def _file_id(sibling: Any) -> str:
    """A file's id as the plan compares it: its git blob id, or `lfs:` and its sha256 for a file in LFS.

    A file the Hub keeps in LFS reports the blob id of its pointer, which no local file has.
    """
    lfs = getattr(sibling, "lfs", None)
    sha256 = getattr(lfs, "sha256", None) if lfs is not None else None
    return f"{LFS_PREFIX}{sha256}" if sha256 else sibling.blob_id or ""


def observe_space(hub: HubClient, token: str, space: DesiredSpace) -> ObservedSpace:
    """A Space's SDK, visibility, files, runtime, variables and the names of its secrets."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        with hub_errors(f"read Space {space.id}", absent=(RepositoryNotFoundError,)):
            info = hub.space_info(space.id, files_metadata=True, token=token)
    except RepositoryNotFoundError:
        return ObservedSpace(space.id, exists=False)
    with hub_errors(f"read the runtime of Space {space.id}"):
        runtime = hub.get_space_runtime(space.id, token=token)
    with hub_errors(f"read the variables of Space {space.id}"):
        variables = {k: v.value for k, v in hub.get_space_variables(space.id, token=token).items()}
    with hub_errors(f"list the secrets of Space {space.id}"):
        secrets = tuple(sorted(hub.get_space_secrets(space.id, token=token)))
    files = {s.rfilename: _file_id(s) for s in info.siblings or []}
    hardware = runtime.requested_hardware or runtime.hardware
    return ObservedSpace(
        id=space.id,
        exists=True,
        sdk=info.sdk,
        private=info.private,
        stage=str(runtime.stage),
        hardware=str(hardware) if hardware else None,
        sleep_time=runtime.sleep_time,
        variables=variables,
        secrets=secrets,
        files=files,
    )
