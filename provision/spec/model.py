"""Typed, read-only access to a loaded spec.

These classes carry no defaults of their own: the loader builds them from a document in which
every default was already applied from the schema (see derive.py), and a test keeps their fields
and the schema's properties identical. `None` here only ever means "not given".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Direction = Literal["maximize", "minimize"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Challenge(_Model):
    org: str
    admin_org: str
    slug: str
    title: str
    tagline: str
    type: str


class Storage(_Model):
    central_bucket: str
    central_visibility: Literal["public", "private"]
    audit_bucket: str
    max_file_bytes: int
    max_sync_files: int
    max_sync_bytes: int


class Space(_Model):
    id: str
    hardware: str
    sleep_time: int | None


class Spaces(_Model):
    backend: Space
    dashboard: Space
    eval: Space


class Bounds(_Model):
    min: float | None = None
    max: float | None = None

    def admits(self, value: float) -> bool:
        """Whether `value` lies within the bounds (inclusive)."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Guard(Bounds):
    field: str


class Metric(_Model):
    field: str
    label: str
    unit: str
    direction: Direction
    guardrail: Bounds | None = None


class Track(_Model):
    name: str
    label: str
    description: str


class Noise(_Model):
    kind: Literal["none", "absolute", "relative"]
    sigma: float
    z: float
    min_margin: float


class Scoring(_Model):
    score_field: str
    label: str
    unit: str
    direction: Direction
    required_fields: tuple[str, ...]
    metrics: tuple[Metric, ...]
    tracks: tuple[Track, ...]
    noise: Noise


class Verification(_Model):
    mode: Literal["manual", "eval-space", "jobs"]
    tolerance: float
    guards: tuple[Guard, ...]
    runs_per_day: int
    private_set: str
    top_k: int


class Quota(_Model):
    per_agent_per_day: int
    per_user_per_day: int
    overrides: dict[str, int]


class Jobs(_Model):
    enabled: bool
    image: str
    flavor: str
    timeout_minutes: int
    harness_prefix: str
    entrypoint: str
    quota: Quota


class Rate(_Model):
    limit: int
    window_seconds: int


class Channel(_Model):
    name: str
    description: str


class ResearchDirection(_Model):
    name: str
    description: str


class Board(_Model):
    channels: tuple[Channel, ...]
    agent_channels: bool
    raw_posts: Rate
    promotions: Rate
    registrations: Rate
    mention_fanout_cap: int
    max_message_bytes: int


class Branding(_Model):
    accent_color: str
    logo_url: str | None


class Dashboard(_Model):
    invite_link: str | None
    branding: Branding


class ChallengeSpec(_Model):
    """A whole, valid, fully defaulted challenge spec."""

    spec_version: int
    challenge: Challenge
    storage: Storage
    spaces: Spaces
    scoring: Scoring
    verification: Verification
    jobs: Jobs
    board: Board
    directions: tuple[ResearchDirection, ...]
    dashboard: Dashboard

    def to_document(self) -> dict[str, object]:
        """The spec as plain data, every default written out: valid against the schema as it is."""
        return self.model_dump(mode="json", exclude_unset=True)
