"""Apply against the stateful Hub fake: convergence, idempotence, resumption after every kind of failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plan_harness import ORG, TOKEN, no_wait, patch_spec

from collab_testing.hub import FakeHub
from provision.hub.client import HubAccessError
from provision.hub.credentials import CredentialsError
from provision.naming import MARKER_KEY
from provision.plan.apply import ApplyError, SpaceFailedError, WaitPolicy, apply_plan
from provision.plan.desired import FINGERPRINT_KEY, SPEC_KEY, token_fingerprint
from provision.plan.session import Session, prepare

BACKEND = f"{ORG}/gemma-collab-backend"
CENTRAL = f"{ORG}/gemma-collab-main-bucket"
ENV = {"HF_TOKEN": TOKEN}


def plan_and_apply(collab: Path, hub: FakeHub, **kwargs: object) -> tuple[Session, int]:
    session = prepare(collab, hub, environ=ENV)
    made = apply_plan(hub, TOKEN, session.plan, session.desired, progress=lambda _line: None, wait=no_wait())
    return session, made


def test_apply_creates_everything_and_replanning_is_empty(collab: Path, hub: FakeHub) -> None:
    _, made = plan_and_apply(collab, hub)
    assert made > 0
    after = prepare(collab, hub, environ=ENV)
    assert after.plan.in_sync, after.plan.pending

    space = hub.spaces[BACKEND]
    assert space.stage == "RUNNING" and space.sdk == "docker" and not space.private
    assert space.secrets["HF_TOKEN"][0] == TOKEN
    variables = {k: v[0] for k, v in space.variables.items()}
    assert json.loads(variables[SPEC_KEY]) == after.loaded.document  # derived from the loader, not retyped
    assert variables[MARKER_KEY] == f"agent-collab-kit {ORG}/gemma-collab"
    assert variables[FINGERPRINT_KEY] == token_fingerprint(TOKEN, BACKEND)
    assert "Dockerfile" in space.files and "collab_backend/main.py" in space.files
    assert not any("__pycache__" in name for name in space.files)
    assert hub.buckets[CENTRAL].private is False
    assert hub.buckets[f"{ORG}-admin/gemma-collab-audit-bucket"].private is True
    marker = json.loads(hub.buckets[CENTRAL].files[".collab/deployment.json"].data)
    assert marker == {"managed_by": "agent-collab-kit", "collab": f"{ORG}/gemma-collab"}


def test_apply_twice_changes_nothing_the_second_time(collab: Path, hub: FakeHub) -> None:
    plan_and_apply(collab, hub)
    writes = sum(n for m, n in hub.calls.items() if m.startswith(("create", "add", "upload", "request", "batch")))
    _, made = plan_and_apply(collab, hub)
    assert made == 0
    assert writes == sum(
        n for m, n in hub.calls.items() if m.startswith(("create", "add", "upload", "request", "batch"))
    )


def test_drift_on_the_hub_is_planned_and_repaired(collab: Path, hub: FakeHub) -> None:
    patch_spec(collab, {"spaces": {"backend": {"hardware": "cpu-upgrade", "sleep_time": 3600}}})
    plan_and_apply(collab, hub)
    space = hub.spaces[BACKEND]
    space.variables[SPEC_KEY] = ("{}", None, space.variables[SPEC_KEY][2])
    del space.secrets["HF_TOKEN"]
    space.requested_hardware = "t4-small"
    hub.buckets[CENTRAL].private = True
    fields = {a.address: [c.field for c in a.changes] for a in prepare(collab, hub, environ=ENV).plan.pending}
    assert fields == {
        "bucket.central": ["visibility"],
        "space.backend": [f"variable {SPEC_KEY}", "secret HF_TOKEN", "hardware"],
    }
    plan_and_apply(collab, hub)
    assert prepare(collab, hub, environ=ENV).plan.in_sync
    assert hub.spaces[BACKEND].requested_hardware == "cpu-upgrade"


def test_a_new_token_is_detected_by_its_fingerprint(collab: Path, hub: FakeHub) -> None:
    plan_and_apply(collab, hub)
    rotated = "hf_rotatedTokenabcdefabcdefabcdef0123"
    hub.add_user("organizer", rotated, {ORG: "admin", f"{ORG}-admin": "admin"})
    plan = prepare(collab, hub, environ={"HF_TOKEN": rotated}).plan
    assert [c.field for c in plan.pending[0].changes] == ["secret HF_TOKEN", f"variable {FINGERPRINT_KEY}"]


@pytest.mark.parametrize(
    ("method", "status"),
    [
        ("create_bucket", 500),
        ("batch_bucket_files", 503),
        ("create_repo", 403),
        ("add_space_variable", 502),
        ("add_space_secret", 500),
        ("upload_folder", 403),
        ("request_space_hardware", 403),
        ("set_space_sleep_time", 500),
    ],
)
def test_a_failure_at_any_step_is_clear_and_the_next_apply_finishes(
    collab: Path, hub: FakeHub, method: str, status: int
) -> None:
    patch_spec(collab, {"spaces": {"backend": {"hardware": "cpu-upgrade", "sleep_time": 3600}}})
    hub.fail(method, status)
    with pytest.raises(ApplyError) as caught:
        plan_and_apply(collab, hub)
    message = str(caught.value)
    assert f"HTTP {status}" in message and "hint:" in message and "run `collab apply` again" in message
    assert TOKEN not in message
    plan_and_apply(collab, hub)
    assert prepare(collab, hub, environ=ENV).plan.in_sync


@pytest.mark.parametrize("status", [401, 403, 429, 500])
def test_a_read_error_is_never_taken_for_absence(collab: Path, hub: FakeHub, status: int) -> None:
    plan_and_apply(collab, hub)
    for method in ("bucket_info", "space_info", "get_space_secrets"):
        hub.fail(method, status)
        with pytest.raises(HubAccessError) as caught:
            prepare(collab, hub, environ=ENV)
        assert caught.value.status == status and "hint:" in str(caught.value)
    assert (
        hub.calls["create_bucket"] == 2 and hub.calls["create_repo"] == 2
    )  # only the first apply's (backend, dashboard)


def test_a_refused_token_stops_before_anything_is_read(collab: Path, hub: FakeHub) -> None:
    with pytest.raises(CredentialsError, match="HTTP 401") as caught:
        prepare(collab, hub, environ={"HF_TOKEN": "hf_notAKnownToken"})
    assert "hf_notAKnownToken" not in str(caught.value)
    assert hub.calls["bucket_info"] == 0 and hub.calls["space_info"] == 0


def test_a_failed_build_shows_the_log_tail_and_the_next_apply_restarts(collab: Path, hub: FakeHub) -> None:
    hub.fail_build(BACKEND, [f"step {i}" for i in range(30)] + ["ERROR: pip install failed"])
    with pytest.raises(SpaceFailedError) as caught:
        plan_and_apply(collab, hub)
    message = str(caught.value)
    assert "BUILD_ERROR" in message and "ERROR: pip install failed" in message
    assert "step 5" not in message  # only the tail
    plan = prepare(collab, hub, environ=ENV).plan
    dashboard = ["space", "visibility", "variable COLLAB_MANAGED_BY", "variable COLLAB_SPEC", "code"]
    assert [(a.address, [c.field for c in a.changes]) for a in plan.pending] == [
        ("space.backend", ["restart"]),
        ("space.dashboard", dashboard),  # apply stopped at the failed backend, before the dashboard
    ]
    plan_and_apply(collab, hub)
    assert hub.spaces[BACKEND].stage == "RUNNING"
    assert prepare(collab, hub, environ=ENV).plan.in_sync


def test_waiting_for_a_space_times_out_with_the_log(collab: Path) -> None:
    slow = FakeHub(build_polls=1000)
    slow.add_user("organizer", TOKEN, {ORG: "admin", f"{ORG}-admin": "admin"})
    session = prepare(collab, slow, environ=ENV)
    ticks = iter(range(10**6))
    wait = WaitPolicy(timeout=30, interval=10, sleep=lambda _s: None, clock=lambda: float(next(ticks) * 10))
    with pytest.raises(SpaceFailedError, match="still BUILDING after 30 s"):
        apply_plan(slow, TOKEN, session.plan, session.desired, progress=lambda _l: None, wait=wait)


def test_an_unmarked_space_is_never_touched(collab: Path, hub: FakeHub) -> None:
    hub.create_repo(BACKEND, repo_type="space", space_sdk="gradio", token=TOKEN)
    hub.spaces[BACKEND].files = {"app.py": b"someone else's app"}
    session = prepare(collab, hub, environ=ENV)
    assert [b.address for b in session.plan.blockers] == ["space.backend"]
    with pytest.raises(ApplyError, match="blocked"):
        apply_plan(hub, TOKEN, session.plan, session.desired, progress=lambda _l: None, wait=no_wait())
    assert hub.spaces[BACKEND].files == {"app.py": b"someone else's app"}
    assert hub.spaces[BACKEND].variables == {} and hub.spaces[BACKEND].secrets == {}
    assert CENTRAL not in hub.buckets  # a blocked plan changes nothing at all


def test_adopting_an_unmarked_space_marks_it(collab: Path, hub: FakeHub) -> None:
    hub.create_repo(BACKEND, repo_type="space", space_sdk="docker", token=TOKEN)
    session = prepare(collab, hub, adopt=True, environ=ENV)
    apply_plan(hub, TOKEN, session.plan, session.desired, progress=lambda _l: None, wait=no_wait())
    assert prepare(collab, hub, environ=ENV).plan.in_sync


def test_stale_space_files_are_deleted_but_the_hubs_own_are_kept(collab: Path, hub: FakeHub) -> None:
    plan_and_apply(collab, hub)
    hub.spaces[BACKEND].files.update({"old.py": b"x", ".gitattributes": b"* text=auto\n"})
    plan_and_apply(collab, hub)
    assert "old.py" not in hub.spaces[BACKEND].files and ".gitattributes" in hub.spaces[BACKEND].files


def test_secret_files_in_the_sources_are_never_uploaded(collab: Path, hub: FakeHub) -> None:
    (collab / "backend" / ".env").write_text(f"HF_TOKEN={TOKEN}\n", encoding="utf-8")
    plan_and_apply(collab, hub)
    assert ".env" not in hub.spaces[BACKEND].files
    assert not any(TOKEN.encode() in data for data in hub.spaces[BACKEND].files.values())
    assert all(TOKEN not in value for value, _, _ in hub.spaces[BACKEND].variables.values())
