"""Runtime settings of the dashboard, read once from the environment (Space variables and secrets).

The challenge spec arrives whole as `COLLAB_SPEC`, the document provisioning gives every Space, so
nothing is typed twice: the backend's address is derived from `spaces.backend.id` (overridden by
`COLLAB_BACKEND_URL` in local mode), the invite link and branding come from `dashboard`. The
dashboard holds no token of its own. Sign-in is Hugging Face OAuth on a Space (the Space sets the
`OAUTH_*` variables when its README says `hf_oauth: true`), or the local identity file in local
mode.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ChallengePart(_Part):
    org: str
    slug: str
    title: str
    tagline: str = ""


class SpacePart(_Part):
    id: str


class SpacesPart(_Part):
    backend: SpacePart


class StoragePart(_Part):
    central_bucket: str


class TrackPart(_Part):
    name: str
    label: str = ""


class ScoringPart(_Part):
    score_field: str
    label: str = ""
    unit: str = ""
    tracks: tuple[TrackPart, ...] = ()


class Branding(_Part):
    accent_color: str = Field("#ff9d00", pattern=r"^#[0-9a-fA-F]{6}$")  # goes into a style sheet: checked again
    logo_url: str | None = Field(None, pattern=r"^https://[^\s\"'<>]+$")


class DashboardPart(_Part):
    invite_link: str | None = None
    branding: Branding = Branding()


class DashboardSpec(_Part):
    """The parts of the challenge spec the dashboard uses (the rest is ignored, not checked twice)."""

    challenge: ChallengePart
    spaces: SpacesPart
    storage: StoragePart
    scoring: ScoringPart
    dashboard: DashboardPart = DashboardPart()


def space_url(space_id: str) -> str:
    """The address a Space serves at: `https://{owner}-{name}.hf.space`, lowercase, '.' and '_' as '-'."""
    return "https://" + re.sub(r"[/._]", "-", space_id.lower()) + ".hf.space"


class Settings(BaseSettings):
    """Everything the dashboard reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="COLLAB_", extra="ignore", populate_by_name=True)

    spec: DashboardSpec = Field(description="the fully defaulted challenge spec as JSON")
    backend_url: str | None = Field(default=None, description="the backend's address (default: its Space's)")
    sign_in: Literal["hub", "local"] = Field(default="hub", description="HF OAuth, or the local identity file")
    identity_file: Path | None = Field(default=None, description="local sign-in: token -> user and org roles")
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30, description="how long a sign-in lasts")
    max_sessions: int = Field(default=10_000, ge=10, description="sessions kept in memory; the oldest go first")
    poll_seconds: int = Field(default=10, ge=2, le=600, description="how often open pages ask what changed")
    backend_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Set by the Space (hf_oauth: true); absent locally.
    oauth_client_id: str | None = Field(default=None, validation_alias="OAUTH_CLIENT_ID")
    oauth_client_secret: str | None = Field(default=None, validation_alias="OAUTH_CLIENT_SECRET")
    oauth_scopes: str = Field(default="openid profile", validation_alias="OAUTH_SCOPES")
    openid_provider_url: str = Field(default="https://huggingface.co", validation_alias="OPENID_PROVIDER_URL")
    space_host: str | None = Field(default=None, validation_alias="SPACE_HOST")

    @property
    def api(self) -> str:
        """The backend's base address, without a trailing slash."""
        return (self.backend_url or space_url(self.spec.spaces.backend.id)).rstrip("/")

    @property
    def secure(self) -> bool:
        """Whether the dashboard is served over HTTPS (a Space): cookies are then `Secure` and `__Host-`."""
        return self.sign_in == "hub"

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if self.sign_in == "local" and self.identity_file is None:
            raise ValueError("COLLAB_IDENTITY_FILE is required when COLLAB_SIGN_IN=local")
        if self.sign_in == "hub" and not (self.oauth_client_id and self.oauth_client_secret and self.space_host):
            raise ValueError(
                "COLLAB_SIGN_IN=hub needs OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET and SPACE_HOST: "
                "the Space sets them when its README has `hf_oauth: true`"
            )
        if self.backend_url is not None and not re.match(r"^https?://[^/\s]+/?$", self.backend_url):
            raise ValueError(f"COLLAB_BACKEND_URL must be http(s)://host[:port], found {self.backend_url!r}")
        return self
