"""What the demo's agents act with: the API on loopback, their scratch buckets, the harness, result files.

An agent holds the token of one local participant and a folder of the folder hub as its scratch
bucket; it calls the backend (`Api`, loopback only), writes into its bucket, runs the challenge
type's harness with the type's CPU arguments and writes results as Markdown with frontmatter,
field by field as the onboarding README lists them. Nothing here decides what to do: that is the
script's (`provision.demo.script`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.challenge_types import ChallengeType
from provision.demo.guide import GuideError
from provision.errors import ProvisionError
from provision.local.processes import without_tokens
from provision.local.target import LocalTarget
from provision.plan.seed import README_PATH

HARNESS_TIMEOUT = 120.0


class DemoError(ProvisionError):
    """A step of the script failed (the API refused, or the harness did not produce a summary)."""


def say(line: str = "") -> None:
    """Print one line of the demo's story at once."""
    print(line, flush=True)


def shown(text: str) -> str:
    """Text from a job (its log, its reasons) made safe for a terminal: control characters escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


class Api:
    """JSON over HTTP to the local backend (loopback only), one user's token per call."""

    def __init__(self, base: str) -> None:
        if not base.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
            raise DemoError(f"the demo talks to a loopback backend only, not {base}")
        self.base = base

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)  # noqa: S310  # loopback
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # loopback URL checked above
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                detail = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                detail = f"HTTP {exc.code}"
            raise DemoError(f"{method} {path} -> {detail}") from None


@dataclass
class Agent:
    agent_id: str
    user: str
    token: str
    bucket_dir: Path
    bucket: str

    def write(self, path: str, data: bytes | str) -> None:
        """Write into the agent's own scratch bucket (local mode: a folder of the folder hub)."""
        target = self.bucket_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)


@dataclass(frozen=True)
class Filed:
    """A result the demo filed, as the API recorded it."""

    id: str
    agent: str
    score: float
    metrics: dict[str, float]
    parents: tuple[str, ...]
    negative: bool
    proxy: bool
    label: str


def figure(value: float) -> str:
    """A figure for the demo's lines: whole numbers in full (a tour of 5235619), others to 6 digits."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def frontmatter(fields: dict[str, Any], body: str) -> str:
    return "---\n" + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True) + "---\n\n" + body.strip() + "\n"


def digest_of(folder: Path) -> str:
    """sha256 over a submission folder's files (names and contents), the result's fingerprint."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()


def run_harness(kind: ChallengeType, submission: Path, state: Path) -> dict[str, Any]:
    """Run the type's harness on one submission with its CPU arguments; return summary.json."""
    command = [sys.executable, str(kind.entrypoint), "--submission-dir", str(submission), "--state-dir", str(state)]
    try:
        done = subprocess.run(
            [*command, *kind.cpu_args], cwd=kind.harness_dir, capture_output=True, text=True,
            timeout=HARNESS_TIMEOUT, check=False, env=without_tokens(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DemoError(f"the harness ran over {HARNESS_TIMEOUT:.0f} s on {submission.name}") from None
    summary = state / "summary.json"
    if done.returncode != 0 or not summary.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise DemoError(f"the harness exited {done.returncode} on {submission.name}:\n{tail}")
    loaded: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
    return loaded


def merge(into: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`into` with `change` merged in, nested mappings key by key."""
    out = copy.deepcopy(into)
    for key, value in change.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_readme(target: LocalTarget) -> str:
    """The onboarding README the local central bucket was seeded with (what agents read first)."""
    path = target.bucket_dir(target.loaded.spec.storage.central_bucket) / README_PATH
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GuideError(f"the central bucket has no readable {README_PATH} ({exc.strerror})") from None


def result_fields(
    listed: Mapping[str, object], summary: dict[str, Any], what: str, status: str, parents: list[str], fingerprint: str
) -> dict[str, Any]:
    """A result's frontmatter, field by field as the README's example lists them (`listed`)."""
    fields: dict[str, Any] = {}
    for name, example in listed.items():
        if name == "status":
            fields[name] = status
        elif name == "parents":
            fields[name] = parents
        elif name == "fingerprint":
            fields[name] = fingerprint
        elif summary.get(name) is not None:
            fields[name] = summary[name]
        elif name == "method":
            fields[name] = what
        elif isinstance(example, str) and example and not example.startswith("<"):
            fields[name] = example  # a fixed value, e.g. the track
        else:
            raise DemoError(f"the README asks results for {name!r} ({example}); the harness summary has no such figure")
    return fields


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
