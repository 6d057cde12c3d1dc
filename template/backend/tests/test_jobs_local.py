"""The local launcher: private copies, no token in the child's environment, stopped at the timeout, reaped."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import pytest
from jobs_world import PLAIN_HARNESS, TINY_HARNESS, pid_alive, wait_for

from collab_backend.jobs.base import LauncherError, LaunchRequest, job_labels
from collab_backend.jobs.local import LocalLauncher, job_environment
from collab_backend.storage import Add, FileInfo
from collab_backend.storage.local import LocalStorage

CENTRAL, AGENT = "acme/fast-central", "acme/fast-speedy"
SECRETS = {
    "HF_TOKEN": "hf_secret_token_value_0123456789",
    "HUGGING_FACE_HUB_TOKEN": "hf_other_secret_0123456789abc",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "MY_API_KEY": "key-value",
    "GITHUB_PAT_PASSWORD": "pw",
    "CUDA_AUTH_TOKEN": "cuda-token",
}


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "hub")
    storage.create_bucket(CENTRAL)
    storage.create_bucket(AGENT)
    storage.batch(CENTRAL, [Add("harness/run.py", TINY_HARNESS.encode()), Add("harness/lib/x.txt", b"x")])
    return storage


def submit(storage: LocalStorage, mode: str, folder: str = "sub") -> tuple[FileInfo, ...]:
    storage.batch(AGENT, [Add(f"{folder}/mode.txt", mode.encode()), Add(f"{folder}/deep/a.json", b"{}")])
    return tuple(storage.list(AGENT, f"{folder}/").items)


def request(files: tuple[FileInfo, ...], job_id: str = "job-1800000000000-1", **change: object) -> LaunchRequest:
    base = LaunchRequest(
        job_id=job_id, agent="speedy", submission_bucket=AGENT, submission_path="sub", submission_files=files,
        central_bucket=CENTRAL, harness_prefix="harness/", entrypoint="run.py", options=("--job-id", job_id),
        timeout_s=60, labels=job_labels("acme", "fast", "speedy", job_id),
    )  # fmt: skip
    return dataclasses.replace(base, **change)  # type: ignore[arg-type]


@pytest.fixture
def launcher(storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    launcher = LocalLauncher(storage, workdir=tmp_path / "runs", cpu_args=("--engine", "fake"), max_running=2,
                             kill_grace_s=2.0)  # fmt: skip
    yield launcher
    launcher.close()


def test_the_environment_passes_only_harmless_variables(tmp_path: Path) -> None:
    base = {**SECRETS, "PATH": "/usr/bin", "LANG": "C.UTF-8", "CUDA_VISIBLE_DEVICES": "0", "HOME": "/root",
            "COLLAB_IDENTITY_FILE": "/x/identities.json", "COLLAB_SPEC": "{}", "PYTHONPATH": "/x"}  # fmt: skip
    env = job_environment(tmp_path, base)
    assert env["PATH"] == "/usr/bin" and env["CUDA_VISIBLE_DEVICES"] == "0" and env["HOME"] == str(tmp_path)
    for name in [*SECRETS, "COLLAB_IDENTITY_FILE", "COLLAB_SPEC", "PYTHONPATH"]:
        assert name not in env
    assert env["HF_HUB_DISABLE_IMPLICIT_TOKEN"] == "1" and not Path(env["HF_TOKEN_PATH"]).exists()
    assert not any(value in json.dumps(env) for value in SECRETS.values())


def test_a_run_gets_copies_the_cpu_args_and_no_token(storage: LocalStorage, launcher: LocalLauncher) -> None:
    handle = launcher.launch(request(submit(storage, "ok")))
    wait_for(lambda: launcher.poll("job-1800000000000-1", handle).state == "ended")
    ended = launcher.poll("job-1800000000000-1", handle)
    assert (ended.exit_code, ended.stage, ended.timed_out) == (0, "COMPLETED", False)
    summary = json.loads(ended.summary or b"")
    assert summary["valid"] and summary["proxy"] and summary["provenance"]["job_id"] == "job-1800000000000-1"
    lines = launcher.logs(handle, 100)
    argv = json.loads(next(line for line in lines if line.startswith("argv "))[5:])
    assert argv[-2:] == ["--engine", "fake"] and "--job-id" in argv
    env = json.loads(next(line for line in lines if line.startswith("env "))[4:])
    text = json.dumps(env) + "\n".join(lines)
    for name, value in SECRETS.items():
        assert name not in env and value not in text
    run = launcher._run(handle)
    assert run is not None
    root = run.root
    # The log shows the run's folders as a Hub job's, never this machine's paths.
    assert (
        env["HOME"] == "/home"
        and "--submission-dir" in argv
        and argv[argv.index("--submission-dir") + 1] == "/submission"
    )
    assert str(root) not in "\n".join(lines)
    if sys.prefix not in ("/", "/usr", "/usr/local"):  # a virtualenv's path is this machine's; a system /usr is not
        assert sys.prefix not in "\n".join(lines)
    assert (root / "harness" / "lib" / "x.txt").read_bytes() == b"x"
    assert (root / "submission" / "deep" / "a.json").read_bytes() == b"{}"
    assert os.stat(root).st_mode & 0o077 == 0  # private to the backend's user
    launcher.release(handle)
    assert not root.exists()


def test_a_run_past_its_timeout_is_stopped_by_pid_and_reaped(storage: LocalStorage, tmp_path: Path) -> None:
    launcher = LocalLauncher(storage, workdir=tmp_path / "runs", max_timeout_s=1.0, kill_grace_s=2.0)
    try:
        handle = launcher.launch(request(submit(storage, "sleep")))
        run = launcher._runs[handle]
        pid = run.process.pid
        assert launcher.poll("job-1800000000000-1", handle).state == "running"
        wait_for(lambda: launcher.poll("job-1800000000000-1", handle).state == "ended", timeout=15)
        ended = launcher.poll("job-1800000000000-1", handle)
        assert ended.timed_out and ended.summary is None and ended.exit_code is not None and ended.exit_code < 0
        assert not pid_alive(pid)
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left to collect
        assert "sleeping" in launcher.logs(handle, 10)
    finally:
        launcher.close()


def test_close_stops_every_run_still_going(storage: LocalStorage, tmp_path: Path) -> None:
    launcher = LocalLauncher(storage, workdir=tmp_path / "runs", kill_grace_s=2.0)
    handle = launcher.launch(request(submit(storage, "sleep")))
    pid = launcher._runs[handle].process.pid
    wait_for(lambda: "sleeping" in launcher.logs(handle, 10))
    started = time.monotonic()
    assert launcher.close() == ["job-1800000000000-1"]
    assert time.monotonic() - started < 10 and not pid_alive(pid)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    with pytest.raises(LauncherError, match="stopping"):
        launcher.launch(request(submit(storage, "ok"), job_id="job-1800000000000-2"))


def test_cancel_and_the_limit_on_runs_at_once(storage: LocalStorage, launcher: LocalLauncher) -> None:
    files = submit(storage, "sleep")
    first = launcher.launch(request(files))
    launcher.launch(request(files, job_id="job-1800000000000-2"))
    with pytest.raises(LauncherError, match="at once"):
        launcher.launch(request(files, job_id="job-1800000000000-3"))
    launcher.cancel(first)
    ended = launcher.poll("job-1800000000000-1", first)
    assert ended.state == "ended" or launcher._runs[first].canceled
    wait_for(lambda: launcher.poll("job-1800000000000-1", first).state == "ended")
    assert launcher.poll("job-1800000000000-1", first).canceled


def test_an_infrastructure_exit_and_a_harness_without_the_entrypoint(storage: LocalStorage,
                                                                     launcher: LocalLauncher) -> None:  # fmt: skip
    handle = launcher.launch(request(submit(storage, "infra")))
    wait_for(lambda: launcher.poll("job-1800000000000-1", handle).state == "ended")
    assert launcher.poll("job-1800000000000-1", handle).exit_code == 3
    with pytest.raises(LauncherError, match=r"no main\.py"):
        launcher.launch(request(submit(storage, "ok"), job_id="job-1800000000000-2", entrypoint="main.py"))
    assert launcher.poll("job-1800000000000-2", "job-1800000000000-2").state == "lost"


def test_a_plain_harness_runs_with_the_two_folders_only(storage: LocalStorage, tmp_path: Path) -> None:
    storage.batch(CENTRAL, [Add("plain/run.py", PLAIN_HARNESS.encode())])
    launcher = LocalLauncher(storage, workdir=tmp_path / "runs")
    try:
        handle = launcher.launch(request(submit(storage, "ok"), harness_prefix="plain/", options=()))
        wait_for(lambda: launcher.poll("job-1800000000000-1", handle).state == "ended")
        assert launcher.poll("job-1800000000000-1", handle).exit_code == 0
    finally:
        launcher.close()


def test_concurrent_launches_never_start_more_than_max_running(storage: LocalStorage, tmp_path: Path) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    files = submit(storage, "sleep")
    launcher = LocalLauncher(storage, workdir=tmp_path / "many", max_running=1, kill_grace_s=1.0)
    barrier = threading.Barrier(8)

    def one(i: int) -> str | None:
        barrier.wait()
        try:
            return launcher.launch(request(files, job_id=f"job-1800000000000-{i}"))
        except LauncherError:
            return None

    try:
        with ThreadPoolExecutor(8) as pool:
            started = [h for h in pool.map(one, range(8)) if h is not None]
        assert len(started) == 1
    finally:
        assert len(launcher.close()) == 1


def test_a_file_changed_after_the_check_refuses_the_launch(storage: LocalStorage, launcher: LocalLauncher) -> None:
    files = submit(storage, "ok")
    storage.batch(AGENT, [Add("sub/mode.txt", b"o" * 5_000_000)])  # grown after the check
    with pytest.raises(LauncherError, match="changed after the launch checked it"):
        launcher.launch(request(files))
    same_size = submit(storage, "ok")
    storage.batch(AGENT, [Add("sub/mode.txt", b"no")])  # same size, other content
    with pytest.raises(LauncherError, match="changed"):
        launcher.launch(request(same_size))
    handle = launcher.launch(request(submit(storage, "ok")))  # a failed launch left no slot taken
    wait_for(lambda: launcher.poll("job-1800000000000-1", handle).state == "ended")


def test_the_group_is_signalled_only_while_the_child_is_unreaped(
    storage: LocalStorage, launcher: LocalLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, bool]] = []
    real = os.killpg

    def spy(pgid: int, sig: int) -> None:
        seen.append((pgid, Path(f"/proc/{pgid}").exists()))  # a reaped child has no /proc entry
        real(pgid, sig)

    monkeypatch.setattr("collab_backend.jobs.local.os.killpg", spy)
    for mode, job in (("ok", "job-1800000000000-1"), ("sleep", "job-1800000000000-2")):
        handle = launcher.launch(request(submit(storage, mode), job_id=job))
        if mode == "sleep":
            launcher.cancel(handle)
        wait_for(lambda h=handle, j=job: launcher.poll(j, h).state == "ended")  # type: ignore[misc]
    assert len(seen) >= 4 and all(unreaped for _, unreaped in seen)
