"""Runtime settings of the eval service, read once from the environment (Space variables and secrets).

The spec arrives whole as `COLLAB_SPEC`, as every Space gets it; the backend's address is derived
from `spaces.backend.id` (`COLLAB_BACKEND_URL` overrides it, as in local mode). The service acts as
an organizer: on a Space with the organizers' token (`HF_TOKEN`, a Space secret), locally with the
local organizer's token (`COLLAB_EVAL_TOKEN`, which `collab up` sets).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def space_url(space_id: str) -> str:
    """The address a Space serves at: `https://{owner}-{name}.hf.space`, lowercase, '.' and '_' as '-'."""
    return "https://" + re.sub(r"[/._]", "-", space_id.lower()) + ".hf.space"


class Settings(BaseSettings):
    """Everything the eval service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="COLLAB_", extra="ignore")

    spec: dict[str, Any] = Field(description="the fully defaulted challenge spec as JSON")
    backend_url: str | None = Field(default=None, description="the backend's address (default: its Space's)")
    eval_token: str | None = Field(default=None, description="local mode: the local organizer's token")
    hf_token: str | None = Field(default=None, validation_alias="HF_TOKEN", description="the organizers' token")
    check_timeout_s: float = Field(default=20.0, gt=0, le=600, description="the longest one cheap check may run")
    eval_poll_s: float = Field(default=10.0, gt=0, le=3600, description="seconds between two passes")
    eval_batch: int = Field(default=20, ge=1, le=200, description="results looked at per pass, new ones and old")

    @property
    def backend(self) -> str:
        url = self.backend_url or space_url(str(self.spec["spaces"]["backend"]["id"]))
        return url.rstrip("/")

    @property
    def token(self) -> str:
        token = self.eval_token or self.hf_token
        assert token is not None  # noqa: S101  # checked in _complete
        return token

    @property
    def challenge_type(self) -> str:
        return str(self.spec["challenge"]["type"])

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if not (self.eval_token or self.hf_token or "").strip():
            raise ValueError(
                "the eval service needs an organizer's token: HF_TOKEN (a Space secret), COLLAB_EVAL_TOKEN"
            )
        if self.backend_url is not None and not re.match(r"^https?://[^/\s]+/?$", self.backend_url):
            raise ValueError(f"COLLAB_BACKEND_URL must be http(s)://host[:port], found {self.backend_url!r}")
        return self

    def spec_json(self) -> str:
        return json.dumps(self.spec)
