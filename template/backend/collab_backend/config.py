"""Runtime settings of the backend, read once from the environment (Space variables and secrets).

The challenge spec arrives whole, as the JSON document the spec loader produced
(`COLLAB_SPEC`): provisioning derives it from challenge.yaml, so no limit or name is typed
twice. `HF_TOKEN` is required on the Hub and refused when it is a placeholder. Jobs run where the
storage is (`COLLAB_JOBS` defaults to `COLLAB_STORAGE`: HF Jobs on the Hub, subprocesses locally).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collab_backend.spec import ChallengeSpec

PLACEHOLDER_TOKENS = {"", "changeme", "hf_xxx", "your-token-here"}
# Options the launcher sets itself; extra arguments may not set them.
HARNESS_FLAGS = ("--submission-dir", "--state-dir", "--private-dir", "--job-id", "--time-budget-s")


class Settings(BaseSettings):
    """Everything the backend reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="COLLAB_", extra="ignore")

    spec: ChallengeSpec = Field(description="the fully defaulted challenge spec as JSON")
    storage: Literal["hub", "local"] = Field(description="where the buckets are")
    local_root: Path | None = Field(default=None, description="the folder hub of the local mode")
    identity_file: Path | None = Field(default=None, description="local mode: token -> user and org roles")
    hf_token: str | None = Field(default=None, validation_alias="HF_TOKEN", description="the admin token (Hub mode)")
    hub_connect_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Hub mode: seconds to open a connection to the Hub before giving up"
    )
    hub_read_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Hub mode: seconds to wait for the Hub's next bytes before giving up"
    )
    jobs: Literal["local", "hub", "off"] | None = Field(
        default=None, description="who runs jobs: local subprocesses, HF Jobs, or nobody (default: like storage)"
    )
    jobs_cpu_args: tuple[str, ...] = Field(
        default=(),
        max_length=32,
        description="local jobs: the challenge type's CPU arguments, as a JSON list; runs use its CPU stand-in",
    )
    submission_config: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="the challenge type's JSON config file in a submission folder, which ruling predicates read",
    )
    jobs_args: tuple[str, ...] = Field(
        default=(),
        max_length=32,
        description="the harness arguments every job passes from the spec (the challenge type's job_args, "
        "e.g. the perplexity cap), as a JSON list; a CPU stand-in's runs leave them out",
    )
    denylist: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="the challenge type's denylist, a JSON file inside its harness folder: its standing rules",
    )
    jobs_dir: Path | None = Field(default=None, description="local jobs: where runs get their folders (default: temp)")
    jobs_max_running: int = Field(default=2, ge=1, le=64, description="local jobs: runs at once")
    jobs_poll_s: float = Field(default=5.0, gt=0, le=300, description="seconds between looks at running jobs")
    verify_rehearsal: bool = Field(
        default=False,
        description="local jobs only: the verifier re-runs proxy results on the CPU stand-in, as a rehearsal "
        "(its verdicts are labelled `verifier:rehearsal` and fall on proxy results only, which never rank)",
    )

    @property
    def jobs_mode(self) -> Literal["local", "hub", "off"]:
        """Who runs jobs: COLLAB_JOBS, or the kind of storage."""
        return self.jobs or self.storage

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if self.storage == "hub" and (self.hf_token or "").strip() in PLACEHOLDER_TOKENS:
            raise ValueError("HF_TOKEN must be set to the organizers' token when COLLAB_STORAGE=hub")
        if self.storage == "local" and (self.local_root is None or self.identity_file is None):
            raise ValueError("COLLAB_LOCAL_ROOT and COLLAB_IDENTITY_FILE are required when COLLAB_STORAGE=local")
        if self.jobs == "hub" and self.storage != "hub":
            raise ValueError("COLLAB_JOBS=hub needs COLLAB_STORAGE=hub: HF Jobs mount the collab's Hub buckets")
        if self.verify_rehearsal and self.jobs_mode != "local":
            raise ValueError("COLLAB_VERIFY_REHEARSAL rehearses on the local CPU stand-in: it needs local jobs")
        for name, args in (("COLLAB_JOBS_CPU_ARGS", self.jobs_cpu_args), ("COLLAB_JOBS_ARGS", self.jobs_args)):
            for arg in args:
                if not 0 < len(arg) <= 200 or not arg.isprintable() or arg.split("=", 1)[0] in HARNESS_FLAGS:
                    raise ValueError(f"{name}: {arg!r} is not a harness argument the backend may add")
        return self
