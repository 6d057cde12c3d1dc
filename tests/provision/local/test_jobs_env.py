"""`collab up` hands the backend what local jobs need: the type's CPU arguments and a folder under .collab/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.local.processes import backend_env
from provision.local.target import local_target


def test_local_jobs_run_the_types_stand_in_in_the_collabs_state_folder(
    collab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collab_backend.config import Settings

    monkeypatch.delenv("COLLAB_JOBS_CPU_ARGS", raising=False)
    monkeypatch.delenv("COLLAB_JOBS", raising=False)
    monkeypatch.delenv("COLLAB_SUBMISSION_CONFIG", raising=False)
    monkeypatch.delenv("COLLAB_DENYLIST", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_organizers_token_for_this_test")
    target = local_target(collab)
    env = backend_env(target)
    assert json.loads(env["COLLAB_JOBS_CPU_ARGS"]) == ["--engine", "fake"]  # the Gemma type's cpu_args
    cap = target.loaded.spec.scoring.metrics[0].guardrail.max  # type: ignore[union-attr]
    assert json.loads(env["COLLAB_JOBS_ARGS"]) == ["--ppl-cap", repr(float(cap))]  # the cap the leaderboard applies
    assert Path(env["COLLAB_JOBS_DIR"]) == collab / ".collab" / "jobs"
    assert "HF_TOKEN" not in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # type: ignore[call-arg]  # read from the environment, as the backend does
    assert settings.jobs_mode == "local" and settings.jobs_cpu_args == ("--engine", "fake")
    assert settings.submission_config == "submission.json"  # the Gemma type's: what ruling predicates read
    assert settings.jobs_args == ("--ppl-cap", repr(float(cap)))
    assert settings.denylist == "gemma_eval/denied.json"  # its standing rules, seeded with the harness


def test_cpu_args_set_by_the_organizer_are_kept(collab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAB_JOBS_CPU_ARGS", "[]")  # e.g. a machine with the real hardware
    assert backend_env(local_target(collab))["COLLAB_JOBS_CPU_ARGS"] == "[]"


def test_the_demos_own_harness_runs_get_no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess

    from provision.challenge_types import load_type
    from provision.demo import agents as demo
    from provision.local.processes import without_tokens

    assert without_tokens({"HF_TOKEN": "hf_x", "HUGGING_FACE_HUB_TOKEN": "hf_y", "PATH": "/bin"}) == {"PATH": "/bin"}
    monkeypatch.setenv("HF_TOKEN", "hf_demo_secret")
    seen: dict[str, object] = {}

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.update(kwargs)
        return subprocess.CompletedProcess(command, 3, "", "")

    monkeypatch.setattr(demo.subprocess, "run", fake_run)
    with pytest.raises(demo.DemoError):
        demo.run_harness(load_type("tsp"), tmp_path / "submission", tmp_path / "state")
    env = seen["env"]
    assert isinstance(env, dict) and "HF_TOKEN" not in env and "PATH" in env


def test_only_harness_runs_count_as_left_over_job_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    from provision.demo.run import job_processes

    jobs = tmp_path / "jobs"
    run_dir = jobs / "job-1" / "harness"
    run_dir.mkdir(parents=True)
    (run_dir / "run.py").write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    harness = subprocess.Popen([sys.executable, str(run_dir / "run.py")], cwd=run_dir)
    bystander = subprocess.Popen(["sleep", "60"], cwd=run_dir)  # e.g. a shell sitting in the folder
    try:
        assert job_processes(jobs) == [harness.pid]
    finally:
        for proc in (harness, bystander):
            proc.kill()
            proc.wait()
    assert job_processes(jobs) == []
