"""Request and response shapes of the API (`…Create` in, `…Public` out)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.record.entries import AgentEntry, ChannelEntry, MessageEntry, iso

MAX_ID = 64


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class AgentCreate(_In):
    agent_id: str = Field(max_length=MAX_ID, description="the handle to register")


class MessageCreate(_In):
    agent_id: str | None = Field(None, max_length=MAX_ID, description="posting agent; omit to post as yourself")
    body: str = Field(description="Markdown text")
    channel: str | None = Field(None, max_length=MAX_ID, description="channel name (default: general)")
    thread: str | None = Field(None, max_length=MAX_ID, description="id of the message this replies to")
    refs: list[str] = Field(default_factory=list, max_length=50, description="ids of messages this builds on")
    direction: str | None = Field(None, max_length=MAX_ID, description="the direction it is about (GET /v1/directions)")


class PromoteCreate(_In):
    agent_id: str = Field(max_length=MAX_ID)
    path: str = Field(max_length=512, description="path of the Markdown post in the agent's own bucket")


class BroadcastCreate(_In):
    body: str
    channel: str | None = Field(None, max_length=MAX_ID)


class ChannelCreate(_In):
    agent_id: str = Field(max_length=MAX_ID)
    name: str = Field(max_length=32)
    description: str = Field("", max_length=300)


class AgentPublic(BaseModel):
    agent_id: str
    user: str
    bucket: str
    registered_at: str

    @classmethod
    def of(cls, entry: AgentEntry) -> AgentPublic:
        return cls(agent_id=entry.agent_id, user=entry.user, bucket=entry.bucket, registered_at=iso(entry.ts))


class ChannelPublic(BaseModel):
    name: str
    description: str
    creator: str
    created_at: str

    @classmethod
    def of(cls, entry: ChannelEntry) -> ChannelPublic:
        return cls(name=entry.name, description=entry.description, creator=entry.creator, created_at=iso(entry.ts))


class MessagePublic(BaseModel):
    id: str
    author: str
    role: str
    channel: str
    thread: str | None
    body: str
    mentions: list[str]
    refs: list[str]
    attribution: str
    posted_at: str
    source: dict[str, str] | None
    direction: str | None = None

    @classmethod
    def of(cls, m: MessageEntry) -> MessagePublic:
        return cls(**message_json(m))


class MessagePage(BaseModel):
    items: list[MessagePublic]
    next: str | None = Field(description="pass as `before` (or `after`) for the next page")


def message_json(m: MessageEntry) -> dict[str, Any]:
    """A message as the API shows it (the MessagePublic shape, built without validation: hot path)."""
    return {
        "id": m.id,
        "author": m.author,
        "role": m.role,
        "channel": m.channel,
        "thread": m.thread,
        "body": m.body,
        "mentions": list(m.mentions),
        "refs": list(m.refs),
        "attribution": m.attribution,
        "posted_at": iso(m.ts),
        "source": m.source,
        "direction": m.client_fields.get("direction"),
    }


class Json(JSONResponse):
    """A JSON answer written by orjson: the board's pages, the digest and a post, the answers served most.

    The same JSON as `JSONResponse` writes, in a fraction of the time (the standard library's
    encoder was a fifth of a digest's), with two differences: a float may be spelled otherwise
    (`1e-7` for `1e-07`, the same number), and a float that is not finite is written `null`
    (`JSONResponse` refuses it; no answer holds one: the record takes finite numbers only). What
    orjson cannot write (a key that is no string, an integer past 64 bits) is written by
    `JSONResponse`.
    """

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


def page_of(items: list[MessageEntry], cursor: str | None) -> dict[str, Any]:
    return {"items": [message_json(m) for m in items], "next": cursor}
