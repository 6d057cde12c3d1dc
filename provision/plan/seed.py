"""Seeding the central bucket: the onboarding README, the harness, the verification index.

Three resources, planned and applied like the others:

- `seed.readme`, `README.md`: generated from the spec and the challenge type's task section. The
  organizers may edit it in the bucket, and an edit is never lost: the tool records the SHA-256
  of what it last wrote in `.collab/seed.json`; a live README that differs from that record is
  an organizer edit and is kept (shown with the diff that overwriting would make) unless
  `--overwrite-readme` is given. A README the tool wrote is updated when the spec changes.
- `seed.harness`: the type's harness folder under `jobs.harness_prefix`, its public data
  (`harness_data`, when the type declares it) under `<harness_prefix>data/`, beside `run.py`,
  where the job finds it, and the type's JSON Schemas and examples under `<harness_prefix>schemas/`
  and `<harness_prefix>examples/`, where the README points participants. The record holds each
  file's SHA-256 and the hash the bucket reported after the upload (the Hub's are Xet hashes,
  not SHA-256), so a changed source and a changed bucket file are both seen without a download.
  Only files the record names are ever deleted: a public set the organizers add under
  `<harness_prefix>data/` stays.
- `seed.verification_index`, `results/verification_status.json`: written as `{}` when absent and
  never again: once it exists the backend owns it. Its content is read too, so that status
  reports a malformed hand edit (`index_problem`) as the backend sees it: not JSON, not a JSON
  object, or entries that name no verdict; the backend keeps such a file as it is and takes
  nothing in from it until it is fixed.

Everything here that the plan reads is plain data (`ObservedSeed.from_json`), so plan cases can
write it down.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from provision.challenge_types import ChallengeType, load_type
from provision.challenge_types.contract import HARNESS_DATA, TYPE_SCHEMAS
from provision.errors import ProvisionError
from provision.hub.client import BucketFilesClient, hub_errors
from provision.naming import TOOL
from provision.onboarding.readme import VERIFICATION_INDEX, render_readme
from provision.spec import LoadedSpec

if TYPE_CHECKING:
    from huggingface_hub._buckets import BucketFile

README_PATH = "README.md"
#: Where a type's example submissions and results go, beside the harness: `<harness_prefix>examples/`.
EXAMPLES = "examples"
RECORD_PATH = ".collab/seed.json"
EMPTY_INDEX = b"{}\n"
DIFF_CONTEXT = 3


class SeedError(ProvisionError):
    """The challenge type's files for the seed cannot be read."""


def sha256(data: bytes) -> str:
    """The SHA-256 the seed record keeps for a file's content."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class HarnessFile:
    source: Path
    sha256: str


@dataclass(frozen=True)
class DesiredSeed:
    bucket_id: str
    readme: str
    harness_prefix: str  # ends with "/"
    harness: dict[str, HarnessFile]  # bucket path -> local file: the harness folder and its data/

    @property
    def readme_bytes(self) -> bytes:
        return self.readme.encode("utf-8")


def harness_files(folder: Path, prefix: str, ignored: tuple[str, ...]) -> dict[str, HarnessFile]:
    """Every file of the harness folder with its path in the bucket (`prefix` + relative path)."""
    base = prefix.rstrip("/") + "/"
    out: dict[str, HarnessFile] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or any(fnmatch.fnmatch(rel, p) for p in ignored):
            continue
        out[base + rel] = HarnessFile(path, sha256(path.read_bytes()))
    return out


def type_harness_files(kind: ChallengeType, prefix: str, ignored: tuple[str, ...]) -> dict[str, HarnessFile]:
    """What a job of this type reads, by bucket path: the harness folder, its data as `data/` beside it.

    The type's `schemas/` and `examples/` folders, when it has them, go beside it too: the
    README sends participants there for the submission format and for examples.

    Args:
        kind: The challenge type.
        prefix: Where the harness goes in the bucket (`jobs.harness_prefix`).
        ignored: Patterns of files never uploaded (caches, secrets).

    Raises:
        SeedError: the harness folder or the declared data folder is missing, or the harness
            folder has a `data` entry of its own, which the data would overwrite.
    """
    base = prefix.rstrip("/") + "/"
    where = f"the central bucket under {base}"
    hint = "\n    hint: reinstall the collab (`pip install -e .`)"
    if not kind.harness_dir.is_dir():
        raise SeedError(
            f"challenge type '{kind.name}' has no harness folder {kind.package}/{kind.harness}/: "
            f"it is seeded into {where}{hint}"
        )
    files = harness_files(kind.harness_dir, base, ignored)
    for folder, name in ((kind.schemas_dir, TYPE_SCHEMAS), (kind.examples_dir, EXAMPLES)):
        if not folder.is_dir():
            continue
        if (kind.harness_dir / name).exists():
            raise SeedError(
                f"challenge type '{kind.name}': {kind.package}/{kind.harness}/{name} and the type's {name} folder "
                f"would both be seeded as {base}{name}/; keep one of them"
            )
        files.update(harness_files(folder, base + name, ignored))
    data = kind.harness_data_dir
    if data is None:
        return files
    if not data.is_dir():
        raise SeedError(
            f"challenge type '{kind.name}' declares harness_data {kind.harness_data!r}, but {kind.package}/"
            f"{kind.harness_data}/ is not a folder: it is seeded into {where}{HARNESS_DATA}/{hint}"
        )
    if (kind.harness_dir / HARNESS_DATA).exists():
        raise SeedError(
            f"challenge type '{kind.name}': {kind.package}/{kind.harness}/{HARNESS_DATA} and harness_data "
            f"{kind.harness_data!r} would both be seeded as {base}{HARNESS_DATA}/; keep the data in one of them"
        )
    return {**files, **harness_files(data, base + HARNESS_DATA, ignored)}


def desired_seed(loaded: LoadedSpec, ignored: tuple[str, ...]) -> DesiredSeed:
    """What the central bucket is seeded with, from the spec and its challenge type.

    Raises:
        ChallengeTypeError: the type is not registered or its task section does not render.
        SeedError: the type's harness folder, or its declared data folder, is missing.
    """
    spec = loaded.spec
    kind = load_type(spec.challenge.type)
    readme = render_readme(spec, kind.task_section(spec))
    prefix = spec.jobs.harness_prefix.rstrip("/") + "/"
    return DesiredSeed(spec.storage.central_bucket, readme, prefix, type_harness_files(kind, prefix, ignored))


@dataclass(frozen=True)
class ObservedSeed:
    """The seeded files as the bucket holds them."""

    readme: str | None = None  # the live README, None when absent
    record: dict[str, dict[str, str]] = field(default_factory=dict)  # path -> {sha256, hub_hash}
    hub_hashes: dict[str, str] = field(default_factory=dict)  # path -> the bucket's hash, for paths that exist
    record_unreadable: bool = False
    index_problem: str | None = None  # what is wrong with the verification index's content; None when sound

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObservedSeed:
        return cls(**data)


def observe_seed(hub: BucketFilesClient, token: str, seed: DesiredSeed) -> ObservedSeed:
    """Read the seeded files: one lookup for every path, then the README and the record's content."""
    bucket = seed.bucket_id
    with hub_errors(f"read the seeded files of bucket {bucket}"):
        record_info = list(hub.get_bucket_paths_info(bucket, [RECORD_PATH], token=token))
        record, unreadable = _read_record(hub, token, bucket) if record_info else ({}, False)
        paths = sorted({README_PATH, VERIFICATION_INDEX, *seed.harness, *record})
        hashes = {f.path: f.xet_hash for f in hub.get_bucket_paths_info(bucket, paths, token=token)}
        readme = index = None
        with tempfile.TemporaryDirectory() as tmp:
            wanted: list[tuple[str | BucketFile, str | Path]] = [
                (p, Path(tmp) / name) for p, name in ((README_PATH, "README.md"), (VERIFICATION_INDEX, "index"))
                if p in hashes
            ]  # fmt: skip
            if wanted:
                hub.download_bucket_files(bucket, wanted, token=token)
            found = {str(p): Path(dest).read_bytes() for p, dest in wanted if Path(dest).exists()}
            readme = found[README_PATH].decode("utf-8", "replace") if README_PATH in found else None
            index = found.get(VERIFICATION_INDEX)
    return ObservedSeed(readme, record, hashes, unreadable, None if index is None else index_problem(index))


VERDICTS = ("pending", "valid", "invalid")


def index_problem(raw: bytes) -> str | None:
    """What is wrong with a verification index's content, as the backend would say; None when it is sound.

    The index is a JSON object of result ids, each a verdict (`pending`, `valid`, `invalid`) or an
    object with a `verdict`; the backend checks the result ids against its record (which this cannot).
    """
    try:
        edited = json.loads(raw)
    except (ValueError, RecursionError):
        return "the verification index is not JSON: the backend takes nothing in from it until it is fixed"
    if not isinstance(edited, dict):
        return "the verification index is not a JSON object of result ids: the backend takes nothing in from it"
    bad = [str(rid)[:40] for rid, item in edited.items()
           if (item.get("verdict") if isinstance(item, dict) else item) not in VERDICTS]  # fmt: skip
    if bad:
        return (f"{len(bad)} entry(ies) of the verification index name no verdict (pending, valid, invalid) "
                f"and are skipped: {', '.join(bad[:5])}")  # fmt: skip
    return None


def _read_record(hub: BucketFilesClient, token: str, bucket: str) -> tuple[dict[str, dict[str, str]], bool]:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "seed.json"
        hub.download_bucket_files(bucket, [(RECORD_PATH, dest)], token=token)
        try:
            files = json.loads(dest.read_text(encoding="utf-8"))["files"]
            record = {
                str(p): {"sha256": str(v["sha256"]), "hub_hash": str(v["hub_hash"])}
                for p, v in files.items()
                if isinstance(v, dict)
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}, True
    return record, False


def readme_diff(live: str, generated: str, *, live_label: str) -> str:
    """A unified diff from the live README to the generated one."""
    return "".join(
        difflib.unified_diff(
            live.splitlines(keepends=True),
            generated.splitlines(keepends=True),
            fromfile=f"{live_label}",
            tofile="README.md (generated from challenge.yaml)",
            n=DIFF_CONTEXT,
        )
    )


def _lines(text: str) -> str:
    return f"{len(text.splitlines())} lines, sha256 {sha256(text.encode('utf-8'))[:12]}"


@dataclass(frozen=True)
class SeedStep:
    """What one seed action does, as plan data: its kind, its changes and the diff to show."""

    address: str
    path: str
    action: Literal["create", "update", "no-op", "kept"]
    changes: tuple[tuple[str, Any, Any], ...]
    reason: str
    diff: str | None = None


def plan_seed(seed: DesiredSeed, seen: ObservedSeed, *, overwrite_readme: bool) -> list[SeedStep]:
    """The seed actions: README (with the ownership rule), harness, verification index."""
    return [_plan_readme(seed, seen, overwrite_readme=overwrite_readme), _plan_harness(seed, seen), _plan_index(seen)]


def _plan_readme(seed: DesiredSeed, seen: ObservedSeed, *, overwrite_readme: bool) -> SeedStep:
    address = "seed.readme"
    wanted = seed.readme
    if seen.readme is None:
        return SeedStep(address, README_PATH, "create", (("README.md", None, _lines(wanted)),), "does not exist")
    live = seen.readme
    recorded = seen.record.get(README_PATH, {}).get("sha256")
    ours = recorded == sha256(live.encode("utf-8"))
    if live == wanted:
        if ours:
            return SeedStep(address, README_PATH, "no-op", (), "matches the spec")
        return SeedStep(
            address,
            README_PATH,
            "update",
            (("record", None, RECORD_PATH),),
            "matches the spec; the seed record does not name it yet",
        )
    if ours:
        diff = readme_diff(live, wanted, live_label="README.md (in the bucket, written by collab)")
        return SeedStep(
            address, README_PATH, "update", (("README.md", _lines(live), _lines(wanted)),), "the spec changed", diff
        )
    diff = readme_diff(live, wanted, live_label="README.md (in the bucket, edited by the organizers)")
    if overwrite_readme:
        return SeedStep(
            address,
            README_PATH,
            "update",
            (("README.md", _lines(live) + " (organizer edit)", _lines(wanted)),),
            "organizer edit overwritten (--overwrite-readme)",
            diff,
        )
    return SeedStep(
        address,
        README_PATH,
        "kept",
        (),
        "organizer edit: differs from what collab last wrote; `collab apply --overwrite-readme` replaces it "
        "(the diff shows what that would change)",
        diff,
    )


def harness_changes(seed: DesiredSeed, seen: ObservedSeed) -> tuple[list[str], list[str]]:
    """Harness files to upload (new, changed in the source, or changed in the bucket) and to delete."""
    upload = []
    for path, local in sorted(seed.harness.items()):
        entry = seen.record.get(path)
        live = seen.hub_hashes.get(path)
        if live is None or entry is None or entry["sha256"] != local.sha256 or entry["hub_hash"] != live:
            upload.append(path)
    delete = sorted(
        p for p in seen.record if p not in seed.harness and p in seen.hub_hashes and p.startswith(seed.harness_prefix)
    )
    return upload, delete


def _plan_harness(seed: DesiredSeed, seen: ObservedSeed) -> SeedStep:
    address = "seed.harness"
    upload, delete = harness_changes(seed, seen)
    where = seed.harness_prefix
    if not upload and not delete:
        return SeedStep(address, where, "no-op", (), "matches the challenge type's harness")
    present = [p for p in seed.harness if p in seen.hub_hashes]
    before = f"{len(present)} file(s)" if present else None
    changes = (("files", before, {"upload": upload, "delete": delete}),)
    if present or delete:
        return SeedStep(address, where, "update", changes, "differs from the challenge type's harness")
    return SeedStep(address, where, "create", changes, "does not exist")


def _plan_index(seen: ObservedSeed) -> SeedStep:
    address = "seed.verification_index"
    if VERIFICATION_INDEX in seen.hub_hashes:
        return SeedStep(address, VERIFICATION_INDEX, "no-op", (), "exists (the backend owns it)")
    return SeedStep(address, VERIFICATION_INDEX, "create", (("file", None, "{}"),), "does not exist")


def apply_seed(
    hub: BucketFilesClient, token: str, address: str, seed: DesiredSeed, change_field: str, after: Any
) -> None:
    """Make one seed change; every file the tool owns is recorded with its hashes right after it is written."""
    bucket = seed.bucket_id
    if address == "seed.verification_index":
        with hub_errors(f"write {VERIFICATION_INDEX} in bucket {bucket}"):
            if list(hub.get_bucket_paths_info(bucket, [VERIFICATION_INDEX], token=token)):
                return  # the backend wrote it meanwhile: it owns it
            hub.batch_bucket_files(bucket, add=[(EMPTY_INDEX, VERIFICATION_INDEX)], token=token)
        return
    if address == "seed.readme":
        written = {README_PATH: seed.readme_bytes}
        if change_field == "README.md":
            with hub_errors(f"write {README_PATH} in bucket {bucket}"):
                hub.batch_bucket_files(bucket, add=[(seed.readme_bytes, README_PATH)], token=token)
        _record(hub, token, bucket, written, drop=())
        return
    if address == "seed.harness":
        upload, delete = after["upload"], after["delete"]
        files = {p: seed.harness[p].source.read_bytes() for p in upload}
        with hub_errors(f"upload the harness to bucket {bucket}"):
            if files:
                hub.batch_bucket_files(bucket, add=[(data, p) for p, data in files.items()], token=token)
            if delete:
                hub.batch_bucket_files(bucket, delete=list(delete), token=token)
        _record(hub, token, bucket, files, drop=tuple(delete))
        return
    raise ValueError(f"unknown seed resource {address!r}")


def _record(
    hub: BucketFilesClient, token: str, bucket: str, written: dict[str, bytes], *, drop: tuple[str, ...]
) -> None:
    """Add what was just written (SHA-256 and the bucket's own hash) to the seed record."""
    with hub_errors(f"update {RECORD_PATH} in bucket {bucket}"):
        found = list(hub.get_bucket_paths_info(bucket, [RECORD_PATH], token=token))
        record, _ = _read_record(hub, token, bucket) if found else ({}, False)
        hashes = {f.path: f.xet_hash for f in hub.get_bucket_paths_info(bucket, sorted(written), token=token)}
        for path, data in written.items():
            if path in hashes:
                record[path] = {"sha256": sha256(data), "hub_hash": hashes[path]}
        for path in drop:
            record.pop(path, None)
        document = {"managed_by": TOOL, "files": dict(sorted(record.items()))}
        body = json.dumps(document, indent=2).encode() + b"\n"
        hub.batch_bucket_files(bucket, add=[(body, RECORD_PATH)], token=token)
