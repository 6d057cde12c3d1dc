"""Which launcher the backend builds from its settings, and the settings it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jobs_world import jobs_spec
from pydantic import ValidationError

from collab_backend.config import Settings
from collab_backend.jobs.hub import HubLauncher
from collab_backend.jobs.local import LocalLauncher
from collab_backend.main import build_context


def settings(tmp_path: Path, **env: object) -> Settings:
    local = {"local_root": tmp_path / "hub", "identity_file": tmp_path / "ids.json"}
    fields = {"spec": jobs_spec().to_document(), "storage": "local", **local, **env}
    return Settings.model_validate(fields)


def test_jobs_follow_the_storage_unless_told(tmp_path: Path) -> None:
    local = build_context(settings(tmp_path, jobs_cpu_args=["--engine", "fake"]))
    assert isinstance(local.launcher, LocalLauncher) and local.launcher.cpu_args == ("--engine", "fake")
    assert local.launcher.stand_in
    assert build_context(settings(tmp_path, jobs="off")).launcher is None
    hub = build_context(settings(tmp_path, storage="hub", HF_TOKEN="hf_a_real_looking_token"))
    assert isinstance(hub.launcher, HubLauncher) and hub.launcher.namespace == "acme"
    assert hub.launcher.state_bucket == hub.spec.storage.audit_bucket and hub.launcher.image == "python:3.12"
    spec_off = {**jobs_spec().to_document(), "jobs": {**jobs_spec().to_document()["jobs"], "enabled": False}}  # type: ignore[dict-item]
    assert build_context(settings(tmp_path, spec=spec_off)).launcher is None


def test_cpu_args_come_as_json_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAB_SPEC", json.dumps(jobs_spec().to_document()))
    monkeypatch.setenv("COLLAB_STORAGE", "local")
    monkeypatch.setenv("COLLAB_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setenv("COLLAB_IDENTITY_FILE", str(tmp_path / "ids.json"))
    monkeypatch.setenv("COLLAB_JOBS_CPU_ARGS", '["--engine", "fake"]')
    monkeypatch.setenv("COLLAB_JOBS_ARGS", '["--ppl-cap", "2.42"]')
    read = Settings()  # type: ignore[call-arg]
    assert read.jobs_cpu_args == ("--engine", "fake") and read.jobs_args == ("--ppl-cap", "2.42")
    assert build_context(read).job_args == ("--ppl-cap", "2.42")


@pytest.mark.parametrize(
    "env",
    [
        {"jobs": "hub"},  # HF Jobs mount Hub buckets: not with folders
        {"jobs_cpu_args": ["--state-dir=/etc"]},
        {"jobs_cpu_args": ["--submission-dir", "x"]},
        {"jobs_cpu_args": ["--job-id"]},
        {"jobs_cpu_args": ["a\nb"]},
        {"jobs_cpu_args": [""]},
        {"jobs_args": ["--state-dir", "/etc"]},  # the spec's arguments may not move the folders either
        {"jobs_args": ["--time-budget-s=1"]},
        {"jobs_args": ["x\ty"]},
        {"jobs": "sometimes"},
        {"jobs_poll_s": 0},
        {"jobs_max_running": 0},
    ],
)
def test_settings_that_would_break_jobs_are_refused(tmp_path: Path, env: dict) -> None:
    with pytest.raises(ValidationError):
        settings(tmp_path, **env)
