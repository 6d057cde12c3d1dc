"""What the record holds, and how each entry is written as files agents can browse.

Every entry carries a sequence number `seq` (its place in the one total order of writes) and a
server timestamp. Files are Markdown with YAML frontmatter (or JSON); frontmatter fields set by
the server are written last so they win over anything a client wrote.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import yaml

from collab_backend import naming


def iso(ts: float) -> str:
    """A UTC timestamp with milliseconds, as files and API responses show it."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def frontmatter_document(fields: dict[str, Any], body: str) -> str:
    """Markdown with a YAML header; values are dumped safely (no tags, no anchors)."""
    header = yaml.safe_dump(fields, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{header}---\n\n{body}"


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
    kind: Literal["message"] = "message"

    @property
    def recipients(self) -> tuple[str, ...]:
        """Handles whose inbox receives the message (mentions and refs, the author excluded)."""
        return tuple(h for h in dict.fromkeys((*self.mentions, *self.refs)) if h != self.author)

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


Entry = AgentEntry | ChannelEntry | MessageEntry
_KINDS: dict[str, type[AgentEntry] | type[ChannelEntry] | type[MessageEntry]] = {
    "agent": AgentEntry,
    "channel": ChannelEntry,
    "message": MessageEntry,
}


def encode(entry: Entry) -> str:
    """One JSON line of the index."""
    return json.dumps(asdict(entry), ensure_ascii=False, separators=(",", ":"))


def decode(line: str) -> Entry:
    """Parse one index line back into its entry."""
    data = json.loads(line)
    cls = _KINDS[data["kind"]]
    for key in ("mentions", "refs"):
        if key in data:
            data[key] = tuple(data[key])
    return cls(**data)
