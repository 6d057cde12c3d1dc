"""The Hub launcher over the stateful Hub fake: what run_job receives, stages, summary, logs, errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub.errors import JobNotFoundError
from jobs_world import summary_bytes

from collab_backend.jobs.base import MARKER_KEY, TOOL, LauncherError, LaunchRequest, job_labels
from collab_backend.jobs.hub import _WRAPPER, TIMEOUT_LABEL, HubLauncher
from collab_backend.services.job_endings import judge
from collab_backend.storage import Add, FileInfo
from collab_backend.storage.hub import HubStorage
from collab_testing.hub import ADMIN_TOKEN, FakeHub

CENTRAL, AUDIT, AGENT = "acme/fast-central", "acme-admin/fast-audit", "acme/fast-speedy"


@pytest.fixture
def hub() -> FakeHub:
    hub = FakeHub()
    hub.add_user("organizer", ADMIN_TOKEN, {"acme": "admin", "acme-admin": "admin"})
    hub.add_user("alice", "hf_alice_token", {"acme": "contributor"})
    storage = HubStorage(hub, token=ADMIN_TOKEN)
    hub.create_bucket(CENTRAL, token=ADMIN_TOKEN)
    hub.create_bucket(AUDIT, private=True, token=ADMIN_TOKEN)
    hub.create_bucket(AGENT, token="hf_alice_token")
    storage.batch(CENTRAL, [Add("harness/run.py", b"print('hi')")])
    HubStorage(hub, token="hf_alice_token").batch(AGENT, [Add("sub/submission.json", b"{}")])
    return hub


@pytest.fixture
def launcher(hub: FakeHub) -> HubLauncher:
    return HubLauncher(hub, HubStorage(hub, token=ADMIN_TOKEN), token=ADMIN_TOKEN, namespace="acme",
                       image="python:3.12", flavor="a10g-small", state_bucket=AUDIT)  # fmt: skip


def request(job_id: str = "job-1800000000000-7") -> LaunchRequest:
    return LaunchRequest(
        job_id=job_id, agent="speedy", submission_bucket=AGENT, submission_path="sub",
        submission_files=(FileInfo("sub/submission.json", 2, "h"),), central_bucket=CENTRAL,
        harness_prefix="harness/", entrypoint="run.py", options=("--job-id", job_id, "--ppl-cap", "2.42"),
        timeout_s=2700, labels=job_labels("acme", "fast", "speedy", job_id),
    )  # fmt: skip


def test_a_job_gets_mounts_labels_and_a_command_and_never_the_token(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    job = hub.jobs[handle]
    assert job.namespace == "acme" and job.flavor == "a10g-small" and job.image == "python:3.12"
    assert job.timeout == 2700
    assert job.env == {} and job.secrets == {}
    mounts = {v.mount_path: (v.source, v.path, v.read_only) for v in job.volumes}
    assert mounts == {
        "/harness": (CENTRAL, "harness", True),
        "/submission": (AGENT, "sub", True),
        "/state": (AUDIT, "jobs/job-1800000000000-7/state", False),
    }
    assert job.command[:3] == ["sh", "-c", _WRAPPER]
    assert job.command[3:] == ["python3", "/harness/run.py", "--submission-dir", "/submission", "--state-dir", "/state",
                               "--job-id", "job-1800000000000-7", "--ppl-cap", "2.42"]  # fmt: skip
    assert job.labels[MARKER_KEY] == TOOL and job.labels["collab_job"] == "job-1800000000000-7"
    assert job.labels[TIMEOUT_LABEL] == "2700"
    assert job.labels["collab_agent"] == "speedy"
    everything = json.dumps([job.command, job.labels, job.env, job.secrets, [v.to_dict() for v in job.volumes]])
    assert ADMIN_TOKEN not in everything and "hf_" not in everything
    assert job.stage == "SCHEDULING"  # the state folder was not empty: the fake would have failed it


def test_a_verification_rerun_mounts_the_private_set_read_only(hub: FakeHub, launcher: HubLauncher) -> None:
    HubStorage(hub, token=ADMIN_TOKEN).batch(AUDIT, [Add("eval_dataset/prompts.json", b"[]")])
    rerun = dataclasses.replace(request(), agent="_verifier", private=(AUDIT, "eval_dataset/"))
    job = hub.jobs[launcher.launch(rerun)]
    mounts = {v.mount_path: (v.source, v.path, v.read_only) for v in job.volumes}
    assert mounts["/private"] == (AUDIT, "eval_dataset", True)
    assert job.command[9:11] == ["--private-dir", "/private"] and job.stage == "SCHEDULING"


def test_the_marker_is_the_one_provisioning_uses() -> None:
    from provision.naming import MARKER_KEY as PROVISION_KEY
    from provision.naming import TOOL as PROVISION_TOOL

    assert (MARKER_KEY, TOOL) == (PROVISION_KEY, PROVISION_TOOL)


def test_stages_summary_and_logs(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    assert launcher.poll("job-1800000000000-7", handle).state == "queued"
    hub.advance_job(handle, "RUNNING", logs=["loading", "token hf_abcdefghijklmnopqrstuvwxyz0123 leaked"])
    assert launcher.poll("job-1800000000000-7", handle).state == "running"
    assert launcher.logs(handle, 1) == ["token hf_[redacted] leaked"]
    HubStorage(hub, token=ADMIN_TOKEN).batch(AUDIT, [Add("jobs/job-1800000000000-7/state/summary.json",
                                                         summary_bytes())])  # fmt: skip
    hub.advance_job(handle, "COMPLETED", logs=["done"])
    ended = launcher.poll("job-1800000000000-7", handle)
    assert (ended.state, ended.stage, ended.started) == ("ended", "COMPLETED", True)
    assert ended.summary is not None and json.loads(ended.summary)["tps"] == 42.0


def test_an_empty_state_folder_or_an_error_stage_ends_without_a_summary(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    hub.advance_job(handle, "ERROR", message="CUDA out of memory")
    ended = launcher.poll("job-1800000000000-7", handle)
    assert (ended.state, ended.stage, ended.summary, ended.message) == ("ended", "ERROR", None, "CUDA out of memory")


def test_an_oversized_summary_is_not_read(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    path = "jobs/job-1800000000000-7/state/summary.json"
    HubStorage(hub, token=ADMIN_TOKEN).batch(AUDIT, [Add(path, b" " * 70_000)])
    hub.advance_job(handle, "COMPLETED")
    ended = launcher.poll("job-1800000000000-7", handle)
    assert ended.summary is None and "larger than" in ended.summary_error


def test_cancel_find_and_a_forgotten_job(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    assert launcher.find("job-1800000000000-7") == handle and launcher.find("job-1800000000000-8") is None
    launcher.cancel(handle)
    assert hub.jobs[handle].stage == "CANCELED"
    assert launcher.poll("job-1800000000000-7", handle).canceled
    del hub.jobs[handle]
    assert launcher.poll("job-1800000000000-7", handle).state == "lost"
    assert launcher.logs(handle, 10) == []
    launcher.cancel(handle)  # a job the Hub forgot needs no cancel


def test_hub_failures_become_launcher_errors_with_a_safe_message(hub: FakeHub, launcher: HubLauncher) -> None:
    hub.fail("run_job", 503)
    with pytest.raises(LauncherError, match="503"):
        launcher.launch(request())
    handle = launcher.launch(request())
    for method in ("inspect_job", "fetch_job_logs", "cancel_job", "list_jobs"):
        hub.fail(method, 500)
    with pytest.raises(LauncherError):
        launcher.poll("job-1800000000000-7", handle)
    with pytest.raises(LauncherError):
        launcher.logs(handle, 5)
    with pytest.raises(LauncherError):
        launcher.cancel(handle)
    with pytest.raises(LauncherError):
        launcher.find("job-1800000000000-7")
    hub.fail("batch_bucket_files", 503, times=10)
    with pytest.raises(LauncherError, match="state folder"):
        launcher.launch(request("job-1800000000000-9"))


def test_the_fake_raises_the_librarys_job_errors(hub: FakeHub) -> None:
    with pytest.raises(JobNotFoundError):
        hub.inspect_job(job_id="nope", namespace="acme", token=ADMIN_TOKEN)
    hub.fail("inspect_job", 404)
    with pytest.raises(JobNotFoundError):
        hub.inspect_job(job_id="abc", namespace="acme", token=ADMIN_TOKEN)
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError, match="rights"):  # a contributor does not run org jobs
        hub.run_job(image="python:3.12", command=["true"], namespace="acme", token="hf_alice_token")
    with pytest.raises(HfHubHTTPError, match="label"):
        hub.run_job(image="python:3.12", command=["true"], namespace="acme", labels={"a": "b c"}, token=ADMIN_TOKEN)
    from huggingface_hub import Volume

    info = hub.run_job(image="python:3.12", command=["true"], namespace="acme", token=ADMIN_TOKEN,
                       volumes=[Volume(type="bucket", source=AUDIT, path="empty", mount_path="/x")])  # fmt: skip
    assert info.status.stage == "ERROR" and "empty" in (info.status.message or "")


def test_the_wrapper_records_the_harness_exit_status_and_exits_with_it(tmp_path: Path) -> None:
    script = _WRAPPER.replace("/state/", f"{tmp_path}/")
    done = subprocess.run(["sh", "-c", script, sys.executable, "-c", "import sys; print(sys.argv[1:]); sys.exit(7)",
                           "a b", "$HOME", ";true"], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 7 and done.stdout.strip() == "['a b', '$HOME', ';true']"
    assert (tmp_path / "exit_status").read_text() == "7\n"


JOB = "job-1800000000000-7"


def test_a_crash_on_the_hub_is_charged_like_a_local_one(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    hub.advance_job(handle, "ERROR", message="Job failed with exit code: 1", exit_status=1, ran_s=30)
    ended = launcher.poll(JOB, handle)
    assert (ended.exit_code, ended.timed_out) == (1, False)
    outcome = judge(ended)
    assert (outcome.status, outcome.charged, outcome.exit_code) == ("failed", True, 1)


def test_exit_3_on_the_hub_stays_an_infrastructure_failure(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    hub.advance_job(handle, "ERROR", exit_status=3, ran_s=30)
    outcome = judge(launcher.poll(JOB, handle))
    assert (outcome.status, outcome.charged, outcome.exit_code) == ("error", False, 3)


def test_a_run_the_hub_killed_at_its_timeout_is_a_charged_timeout(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    hub.advance_job(handle, "ERROR", message="Job timed out", ran_s=2700)  # no exit status: the container was killed
    ended = launcher.poll(JOB, handle)
    assert ended.exit_code is None and ended.timed_out
    outcome = judge(ended)
    assert (outcome.status, outcome.charged) == ("timeout", True)


def test_a_container_killed_early_without_an_exit_status_is_refunded(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    hub.advance_job(handle, "ERROR", message="node lost", ran_s=60)
    outcome = judge(launcher.poll(JOB, handle))
    assert (outcome.status, outcome.charged) == ("error", False)


def test_a_garbled_exit_status_counts_as_none(hub: FakeHub, launcher: HubLauncher) -> None:
    handle = launcher.launch(request())
    HubStorage(hub, token=ADMIN_TOKEN).batch(AUDIT, [Add(f"jobs/{JOB}/state/exit_status", b"x" * 100)])
    hub.advance_job(handle, "ERROR", ran_s=60)
    assert launcher.poll(JOB, handle).exit_code is None


def test_transport_failures_become_launcher_errors(hub: FakeHub, launcher: HubLauncher) -> None:
    hub.fail_network("run_job")
    with pytest.raises(LauncherError, match="could not be reached"):
        launcher.launch(request())
    handle = launcher.launch(request())
    for method in ("inspect_job", "fetch_job_logs", "cancel_job", "list_jobs"):
        hub.fail_network(method)
    with pytest.raises(LauncherError):
        launcher.poll(JOB, handle)
    with pytest.raises(LauncherError):
        launcher.logs(handle, 5)
    with pytest.raises(LauncherError):
        launcher.cancel(handle)
    with pytest.raises(LauncherError):
        launcher.find(JOB)
