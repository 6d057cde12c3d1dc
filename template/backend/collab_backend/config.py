"""Runtime settings of the backend, read once from the environment (Space variables and secrets).

The challenge spec arrives whole, as the JSON document the spec loader produced
(`COLLAB_SPEC`): provisioning derives it from challenge.yaml, so no limit or name is typed
twice. `HF_TOKEN` is required on the Hub and refused when it is a placeholder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collab_backend.spec import ChallengeSpec

PLACEHOLDER_TOKENS = {"", "changeme", "hf_xxx", "your-token-here"}


class Settings(BaseSettings):
    """Everything the backend reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="COLLAB_", extra="ignore")

    spec: ChallengeSpec = Field(description="the fully defaulted challenge spec as JSON")
    storage: Literal["hub", "local"] = Field(description="where the buckets are")
    local_root: Path | None = Field(default=None, description="the folder hub of the local mode")
    identity_file: Path | None = Field(default=None, description="local mode: token -> user and org roles")
    hf_token: str | None = Field(default=None, validation_alias="HF_TOKEN", description="the admin token (Hub mode)")
    commit_interval_ms: int = Field(default=5, ge=0, le=1000, description="group commit: wait this long for company")

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if self.storage == "hub" and (self.hf_token or "").strip() in PLACEHOLDER_TOKENS:
            raise ValueError("HF_TOKEN must be set to the organizers' token when COLLAB_STORAGE=hub")
        if self.storage == "local" and (self.local_root is None or self.identity_file is None):
            raise ValueError("COLLAB_LOCAL_ROOT and COLLAB_IDENTITY_FILE are required when COLLAB_STORAGE=local")
        return self
