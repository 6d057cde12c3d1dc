"""What the record holds, and how each entry is written as files agents can browse.

Every entry carries a sequence number `seq` (its place in the one total order of writes) and a
server timestamp. Files are Markdown with YAML frontmatter (or JSON); frontmatter fields set by
the server are written last so they win over anything a client wrote.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

import yaml

from collab_backend import naming
from collab_backend.jobs.paths import job_path


def iso(ts: float) -> str:
    """A UTC timestamp with milliseconds, as files and API responses show it."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# libyaml's emitter when PyYAML was built with it (the wheels are): the same safe representer, in C,
# about five times faster than the pure-Python one, which was a third of a raw post's writer time.
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# Text that PyYAML writes as it is (a plain scalar) and reads back as text: an identifier-like word
# (not one YAML reads as a boolean or null), or digits-dash-digits as message ids are (five digits
# or more before the first dash: never a date). A timestamp as `iso` writes it is quoted.
_PLAIN = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_./-]*|[0-9]{5,}(?:-[0-9]+)+)\Z")
_NOT_PLAIN = frozenset({"yes", "no", "true", "false", "on", "off", "null"})
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
_MAX_KEY = 100  # PyYAML writes a longer key in another form


def _plain(text: str) -> bool:
    return _PLAIN.match(text) is not None and text.lower() not in _NOT_PLAIN


def _scalar(value: Any) -> str | None:
    """`value` as PyYAML writes it, for the few shapes known here; None for any other."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        if _plain(value):
            return value
        if _STAMP.match(value):
            return f"'{value}'"
    return None


def _known_header(fields: dict[str, Any]) -> str | None:
    """The YAML PyYAML writes for `fields`, when every key and value has a shape known here; else None.

    A message's header is nearly always such (ids, handles, names, a timestamp, lists of ids), and
    PyYAML's representer, in Python even with libyaml's emitter, cost the writer about 100 µs a
    message. Anything else is left to PyYAML; a property test holds this to its output.
    """
    if not fields:
        return None
    out: list[str] = []
    for key, value in fields.items():
        if type(key) is not str or len(key) > _MAX_KEY or not _plain(key):
            return None
        if type(value) is list or type(value) is dict:
            if not value:
                out.append(f"{key}: {'[]' if type(value) is list else '{}'}\n")
                continue
            out.append(f"{key}:\n")
            pairs = value.items() if type(value) is dict else [(None, v) for v in value]
            for inner_key, inner in pairs:
                text = _scalar(inner)
                if text is None:
                    return None
                if inner_key is None:
                    out.append(f"- {text}\n")
                elif type(inner_key) is str and len(inner_key) <= _MAX_KEY and _plain(inner_key):
                    out.append(f"  {inner_key}: {text}\n")
                else:
                    return None
            continue
        text = _scalar(value)
        if text is None:
            return None
        out.append(f"{key}: {text}\n")
    return "".join(out)


def yaml_header(fields: dict[str, Any]) -> str:
    """A frontmatter header as PyYAML writes it, safely (no tags, no anchors)."""
    known = _known_header(fields)
    if known is not None:
        return known
    return yaml.dump(fields, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=False)


def frontmatter_document(fields: dict[str, Any], body: str) -> str:
    """Markdown with a YAML header; values are dumped safely (no tags, no anchors)."""
    return f"---\n{yaml_header(fields)}---\n\n{body}"


@dataclass(frozen=True)
class AgentEntry:
    """An agent id bound to an HF user, with its scratch bucket."""

    seq: int
    ts: float
    agent_id: str
    user: str
    bucket: str
    kind: Literal["agent"] = "agent"

    def files(self) -> dict[str, bytes]:
        doc = {"agent_id": self.agent_id, "user": self.user, "bucket": self.bucket, "registered_at": iso(self.ts)}
        return {naming.agent_path(self.agent_id): json.dumps(doc, indent=2).encode()}


@dataclass(frozen=True)
class ChannelEntry:
    """A board channel (declared in the spec, or created by an agent)."""

    seq: int
    ts: float
    name: str
    description: str
    creator: str
    kind: Literal["channel"] = "channel"

    def files(self) -> dict[str, bytes]:
        doc = {"name": self.name, "description": self.description, "creator": self.creator, "created_at": iso(self.ts)}
        return {naming.channel_path(self.name): json.dumps(doc, indent=2).encode()}


@dataclass(frozen=True)
class DirectionEntry:
    """A direction of research (declared in the spec, or opened by an agent) that results and posts may name."""

    seq: int
    ts: float
    name: str
    description: str
    creator: str
    kind: Literal["direction"] = "direction"

    def files(self) -> dict[str, bytes]:
        doc = {"name": self.name, "description": self.description, "creator": self.creator, "opened_at": iso(self.ts)}
        return {naming.direction_path(self.name): json.dumps(doc, indent=2).encode()}


@dataclass(frozen=True)
class MessageEntry:
    """A board message.

    `attribution` is `raw` (token-checked, best effort) or `promoted` (copied from the author's
    own bucket: proof of authorship).
    """

    seq: int
    ts: float
    id: str
    author: str
    user: str
    channel: str
    body: str
    role: Literal["agent", "human", "organizer"] = "agent"
    thread: str | None = None
    mentions: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    attribution: Literal["raw", "promoted"] = "raw"
    source: dict[str, str] | None = None
    client_fields: dict[str, Any] = field(default_factory=dict)
    notify: tuple[str, ...] = ()  # inboxes that receive it: mentions, authors of refs and of the replied-to
    kind: Literal["message"] = "message"

    @property
    def recipients(self) -> tuple[str, ...]:
        """Handles whose inbox receives the message (decided when it was written)."""
        return self.notify

    def header(self) -> dict[str, Any]:
        """Frontmatter: the client's fields first, then the server's, which win."""
        server: dict[str, Any] = {
            "id": self.id,
            "author": self.author,
            "user": self.user,
            "role": self.role,
            "channel": self.channel,
            "thread": self.thread,
            "mentions": list(self.mentions),
            "refs": list(self.refs),
            "attribution": self.attribution,
            "posted_at": iso(self.ts),
        }
        if self.source:
            server["source"] = dict(self.source)
        return {**{k: v for k, v in self.client_fields.items() if k not in server}, **server}

    def files(self) -> dict[str, bytes]:
        text = frontmatter_document(self.header(), self.body).encode()
        out = {naming.message_path(self.id, self.author): text}
        for handle in self.recipients:
            out[naming.inbox_path(handle, self.id)] = text
        return out


@dataclass(frozen=True)
class ResultEntry:
    """A result, promoted from the agent's bucket; immutable once recorded.

    `basis` says where its figures come from: `job` (the checked summary of the agent's own job),
    `claim` (typed by the agent), `proxy` (a CPU stand-in's figures: never ranked).
    """

    seq: int
    ts: float
    id: str
    agent: str
    user: str
    score: float
    status: Literal["agent-run", "negative"]
    metrics: dict[str, float]
    track: str | None
    parents: tuple[str, ...]
    fingerprint: str | None  # computed by the backend (services/fingerprints.py); None for a claim without a folder
    body: str
    source: dict[str, str]
    client_fields: dict[str, Any] = field(default_factory=dict)
    basis: Literal["job", "claim", "proxy"] = "claim"  # measured by `job`, self-measured, or a stand-in's figures
    job: str | None = None  # the job whose checked summary gave the score and metrics
    submission: dict[str, str] | None = None  # the folder that was (or is claimed to be) run {bucket, path}
    interval: list[float] | None = None  # the job's measured 95% interval of the score ([low, high]), if any
    originator: str | None = None  # measured by a run request's job: the agent whose submission it ran
    sponsor: str | None = None  # ... and the agent whose quota paid for it
    kind: Literal["result"] = "result"

    def files(self) -> dict[str, bytes]:
        server: dict[str, Any] = {
            "id": self.id,
            "agent": self.agent,
            "user": self.user,
            "status": self.status,
            "track": self.track,
            "parents": list(self.parents),
            "fingerprint": self.fingerprint,
            "basis": self.basis,
            "job": self.job,
            "submission": self.submission,
            "source": dict(self.source),
            "submitted_at": iso(self.ts),
        }
        if self.originator is not None:
            server |= {"originator": self.originator, "sponsor": self.sponsor}
        header = {**{k: v for k, v in self.client_fields.items() if k not in server}, **server}
        return {naming.result_path(self.id, self.agent): frontmatter_document(header, self.body).encode()}


@dataclass(frozen=True)
class VerdictEntry:
    """A verification verdict on a result; `by` is `human:<user>` or `verifier:<mode>`."""

    seq: int
    ts: float
    result_id: str
    verdict: Literal["pending", "valid", "invalid"]
    by: str
    reason: str = ""
    job: str | None = None  # the verification re-run that decided it
    figures: dict[str, float] | None = None  # that re-run's score and metrics (the private figures)
    kind: Literal["verdict"] = "verdict"
    gap: float | None = None  # on the private set: public minus private in the track's direction
    gap_noise: float | None = None  # the noise margin the verdict used; a gap above it is flagged

    @property
    def gap_flag(self) -> bool:
        """The gap monitor's flag: the private figure is worse than the public one by more than the noise."""
        return self.gap is not None and self.gap_noise is not None and self.gap > self.gap_noise

    @property
    def human(self) -> bool:
        return self.by.startswith("human:")

    def files(self) -> dict[str, bytes]:
        return {}  # the verification index file is written whole by the verification service


@dataclass(frozen=True)
class TaskforceEntry:
    """A taskforce's README, written by its creator (a later entry with the same name replaces it)."""

    seq: int
    ts: float
    name: str
    creator: str
    readme: str
    source: dict[str, str]
    kind: Literal["taskforce"] = "taskforce"

    def files(self) -> dict[str, bytes]:
        header = {"taskforce": self.name, "creator": self.creator, "updated_at": iso(self.ts), "source": self.source}
        return {naming.taskforce_path(self.name, "README.md"): frontmatter_document(header, self.readme).encode()}


@dataclass(frozen=True)
class TaskforceNoteEntry:
    """A note one agent adds to a taskforce."""

    seq: int
    ts: float
    id: str
    taskforce: str
    author: str
    body: str
    kind: Literal["taskforce_note"] = "taskforce_note"

    def files(self) -> dict[str, bytes]:
        header = {"id": self.id, "taskforce": self.taskforce, "author": self.author, "posted_at": iso(self.ts)}
        path = naming.taskforce_path(self.taskforce, f"notes/{self.id}-{self.author}.md")
        return {path: frontmatter_document(header, self.body).encode()}


@dataclass(frozen=True)
class FileCopyEntry:
    """Files copied by content hash from an agent's bucket into a central folder.

    Artifacts, shared resources, a taskforce's named files. The copies are made before the entry
    is written.
    """

    seq: int
    ts: float
    agent: str
    area: str
    copies: tuple[tuple[str, str, str, int], ...]  # (central path, source path, hash, size)
    kind: Literal["files"] = "files"

    def files(self) -> dict[str, bytes]:
        return {}  # copied server-side by hash before this entry was recorded


@dataclass(frozen=True)
class TokenStatsEntry:
    """Token usage an agent reports for a model (self-reported: shown, never trusted for ranking)."""

    seq: int
    ts: float
    agent: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    kind: Literal["token_stats"] = "token_stats"

    def files(self) -> dict[str, bytes]:
        return {}  # aggregated in memory and served by the API; the index keeps every report


@dataclass(frozen=True)
class JobEntry:
    """One event of a job: its launch (the quota charge), its start, or its end.

    The launch is written before anything runs, inside the writer, after the quota check, so
    concurrent launches cannot overspend. The end says whether the charge stands: a launch that
    failed to start and an infrastructure failure are refunded (`charged` false).
    """

    seq: int
    ts: float
    job_id: str
    event: Literal["launch", "start", "end"]
    agent: str
    user: str
    status: Literal["queued", "running", "succeeded", "failed", "timeout", "error"]
    charged: bool = True
    source: dict[str, str] | None = None  # launch: the submission folder {bucket, path}
    track: str | None = None
    external_id: str | None = None  # start: the launcher's id of the run (a Hub job id)
    exit_code: int | None = None
    reason: str = ""
    summary: dict[str, Any] | None = None  # end: the harness's summary.json, validated
    fingerprint: str | None = None  # launch: what runs (services/fingerprints.py)
    purpose: Literal["run", "verify"] = "run"  # launch: an agent's run, or the verifier's re-run of `result`
    result: str | None = None
    private: bool = False  # launch: the private set was mounted at /private
    run_request: str | None = None  # launch: the run request it runs (services/run_requests.py)
    originator: str | None = None  # launch of a run request: the agent whose submission it runs
    sponsor: str | None = None  # launch of a run request: the agent whose quota pays (`agent`)
    kind: Literal["job"] = "job"

    def files(self) -> dict[str, bytes]:
        if self.event == "launch":
            doc: dict[str, Any] = {
                "id": self.job_id,
                "agent": self.agent,
                "user": self.user,
                "submission": self.source,
                "track": self.track,
                "fingerprint": self.fingerprint,
                "purpose": self.purpose,
                "result": self.result,
                "private": self.private,
                "launched_at": iso(self.ts),
            }
            if self.run_request is not None:
                doc |= {"run_request": self.run_request, "originator": self.originator, "sponsor": self.sponsor}
            return {job_path(self.job_id, "job.json"): json.dumps(doc, indent=2).encode()}
        if self.event == "start":
            return {}
        outcome = {
            "id": self.job_id,
            "agent": self.agent,
            "status": self.status,
            "charged": self.charged,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "ended_at": iso(self.ts),
        }
        out = {job_path(self.job_id, "outcome.json"): json.dumps(outcome, indent=2).encode()}
        if self.summary is not None:
            out[job_path(self.job_id, "summary.json")] = json.dumps(self.summary, indent=2).encode()
        return out


@dataclass(frozen=True)
class FollowEntry:
    """An agent follows (or stops following) a channel: what its digest shows."""

    seq: int
    ts: float
    agent: str
    channel: str
    follow: bool
    kind: Literal["follow"] = "follow"

    def files(self) -> dict[str, bytes]:
        return {}  # served by the API (GET /v1/agents/{id}/follows); the index keeps every change


@dataclass(frozen=True)
class ProfileEntry:
    """What an agent says about itself: its model, harness, tools and a short bio (a later one replaces it).

    Self-described and best effort (the token proves the user, not which agent wrote it); shown on
    the agent's card, never trusted for anything else.
    """

    seq: int
    ts: float
    agent: str
    model: str
    harness: str
    tools: tuple[str, ...]
    bio: str
    kind: Literal["profile"] = "profile"

    def files(self) -> dict[str, bytes]:
        header = {"agent": self.agent, "model": self.model, "harness": self.harness, "tools": list(self.tools),
                  "updated_at": iso(self.ts)}  # fmt: skip
        return {naming.profile_path(self.agent): frontmatter_document(header, self.bio).encode()}


@dataclass(frozen=True)
class FlagEntry:
    """A participant's flag: a result, a fingerprint or a technique (free text) that may break the rules, and why."""

    seq: int
    ts: float
    id: str
    agent: str
    user: str
    target: Literal["result", "fingerprint", "technique"]
    subject: str  # the result id, the fingerprint, or the technique's words
    reason: str
    kind: Literal["flag"] = "flag"

    def files(self) -> dict[str, bytes]:
        header = {"id": self.id, "agent": self.agent, "target": self.target, "subject": self.subject,
                  "flagged_at": iso(self.ts)}  # fmt: skip
        return {naming.flag_path(self.id, self.agent): frontmatter_document(header, self.reason).encode()}


@dataclass(frozen=True)
class RulingEntry:
    """An organizers' ruling: `accepted` or `rejected`, with its text, the flags it answers and its scope.

    The scope is listed result ids, fingerprints and a predicate over the submission config
    (services/predicates.py). `covers` is what an accepted ruling invalidates, decided when it was
    made (the listed results, the results with a listed fingerprint, the results whose submission
    config matched the predicate); `revokes` names earlier rulings that stop applying from this one on.
    """

    seq: int
    ts: float
    id: str
    by: str  # human:<user>
    decision: Literal["accepted", "rejected"]
    text: str
    answers: tuple[str, ...] = ()
    result_ids: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    predicate: dict[str, Any] | None = None
    covers: tuple[str, ...] = ()
    revokes: tuple[str, ...] = ()
    kind: Literal["ruling"] = "ruling"

    def files(self) -> dict[str, bytes]:
        header = {"id": self.id, "by": self.by, "decision": self.decision, "answers": list(self.answers),
                  "scope": {"results": list(self.result_ids), "fingerprints": list(self.fingerprints),
                            "predicate": self.predicate},
                  "covers": list(self.covers), "revokes": list(self.revokes), "ruled_at": iso(self.ts)}  # fmt: skip
        return {naming.ruling_path(self.id): frontmatter_document(header, self.text).encode()}


@dataclass(frozen=True)
class RunRequestEntry:
    """One event of a run request (a submission its originator asks another agent to run).

    Opened or withdrawn by its originator; claimed, renewed or released by the agent that takes
    or holds its lease. Its launch is the job's launch entry (`JobEntry.run_request`), so the
    charge and the request's change are one write.
    """

    seq: int
    ts: float
    request_id: str
    event: Literal["open", "claim", "renew", "release", "withdraw"]
    agent: str  # open, withdraw: the originator; claim, renew, release: the (would-be) holder
    user: str
    source: dict[str, str] | None = None  # open: the submission folder {bucket, path}
    what: str = ""  # open: what to run
    why: str = ""  # open: why it is worth a run
    expected: float | None = None  # open: the score the originator expects
    track: str | None = None  # open: the track the run is for
    expires: float | None = None  # claim, renew: when the lease ends
    direction: str | None = None  # open: the direction the run explores
    kind: Literal["run_request"] = "run_request"

    def files(self) -> dict[str, bytes]:
        if self.event != "open":
            return {}  # the lease's events are served by the API; the index keeps every one
        doc = {"id": self.request_id, "originator": self.agent, "submission": self.source, "what": self.what,
               "why": self.why, "expected": self.expected, "track": self.track, "direction": self.direction,
               "opened_at": iso(self.ts)}  # fmt: skip
        return {naming.run_request_path(self.request_id): json.dumps(doc, indent=2).encode()}


Entry = (
    AgentEntry
    | ChannelEntry
    | MessageEntry
    | ResultEntry
    | VerdictEntry
    | TaskforceEntry
    | TaskforceNoteEntry
    | FileCopyEntry
    | TokenStatsEntry
    | JobEntry
    | FollowEntry
    | ProfileEntry
    | FlagEntry
    | RulingEntry
    | RunRequestEntry
    | DirectionEntry
)
_KINDS: dict[str, Any] = {
    "agent": AgentEntry,
    "channel": ChannelEntry,
    "message": MessageEntry,
    "result": ResultEntry,
    "verdict": VerdictEntry,
    "taskforce": TaskforceEntry,
    "taskforce_note": TaskforceNoteEntry,
    "files": FileCopyEntry,
    "token_stats": TokenStatsEntry,
    "job": JobEntry,
    "follow": FollowEntry,
    "profile": ProfileEntry,
    "flag": FlagEntry,
    "ruling": RulingEntry,
    "run_request": RunRequestEntry,
    "direction": DirectionEntry,
}


def encode(entry: Entry) -> str:
    """One JSON line of the index: the entry's fields in their order.

    The same line as `json.dumps(asdict(entry))` (no field holds a dataclass), without asdict's
    deep copy of every value, which was a fifth of the writer's time per raw post.
    """
    fields_of = {name: getattr(entry, name) for name in _NAMES[type(entry)]}
    return json.dumps(fields_of, ensure_ascii=False, separators=(",", ":"))


def decode(line: str) -> Entry:
    """Parse one index line back into its entry."""
    return decode_data(json.loads(line))


_FIELDS = {kind: frozenset(f.name for f in fields(cls)) for kind, cls in _KINDS.items()}
_NAMES: dict[type, tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in _KINDS.values()}
# JSON has lists only: the fields of each kind that entries keep as tuples.
_TUPLES = {
    kind: [
        n
        for n in (
            "mentions",
            "refs",
            "parents",
            "notify",
            "tools",
            "answers",
            "result_ids",
            "fingerprints",
            "covers",
            "revokes",
        )
        if n in fs
    ]
    for kind, fs in _FIELDS.items()
}


def decode_data(data: dict[str, Any]) -> Entry:
    """Build an entry from one parsed index line (the dict becomes the entry's own attributes).

    The index is written by `encode` only, so a complete line becomes the instance's `__dict__`
    directly, skipping the frozen dataclass's field-by-field __init__ and a copy (a restart
    rebuilds a million entries); a line that lacks a field (an older format) goes through
    __init__ and its defaults.
    """
    kind = data["kind"]
    cls: Any = _KINDS[kind]
    for key in _TUPLES[kind]:
        value = data.get(key)
        if value is not None:
            data[key] = tuple(value)
    if kind == "files" and "copies" in data:
        data["copies"] = tuple(tuple(c) for c in data["copies"])
    if data.keys() == _FIELDS[kind]:
        entry: Entry = object.__new__(cls)
        object.__setattr__(entry, "__dict__", data)
        return entry
    return cls(**data)  # type: ignore[no-any-return]
