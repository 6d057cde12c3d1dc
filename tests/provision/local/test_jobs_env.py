"""`collab up` hands the backend what local jobs need: the type's CPU arguments and a folder under .collab/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.local import local_target
from provision.local_run import backend_env


def test_local_jobs_run_the_types_stand_in_in_the_collabs_state_folder(
    collab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collab_backend.config import Settings

    monkeypatch.delenv("COLLAB_JOBS_CPU_ARGS", raising=False)
    monkeypatch.delenv("COLLAB_JOBS", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_organizers_token_for_this_test")
    target = local_target(collab)
    env = backend_env(target)
    assert json.loads(env["COLLAB_JOBS_CPU_ARGS"]) == ["--engine", "fake"]  # the Gemma type's cpu_args
    assert Path(env["COLLAB_JOBS_DIR"]) == collab / ".collab" / "jobs"
    assert "HF_TOKEN" not in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # type: ignore[call-arg]  # read from the environment, as the backend does
    assert settings.jobs_mode == "local" and settings.jobs_cpu_args == ("--engine", "fake")


def test_cpu_args_set_by_the_organizer_are_kept(collab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAB_JOBS_CPU_ARGS", "[]")  # e.g. a machine with the real hardware
    assert backend_env(local_target(collab))["COLLAB_JOBS_CPU_ARGS"] == "[]"
