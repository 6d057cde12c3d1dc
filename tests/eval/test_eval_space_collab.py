"""A collab that verifies in an eval Space: rendered with eval/, provisioned on the Hub fake, run by `collab up`.

The local run is real: `collab up` as a subprocess starts the backend and the eval service, both
stopped by their PIDs in a `finally`. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
from local_harness import Proc, stop
from plan_harness import ADMIN_ORG, ORG, TOKEN, USER

from collab_testing.hub import FakeHub
from provision.cli import main
from provision.local.processes import pid_alive
from provision.local.target import local_target, local_tokens

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE = ROOT / "challenge_tsp" / "examples" / "results" / "valid" / "nearest-neighbour.md"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tsp collab rendered from this tree with verification mode eval-space."""
    import copier

    dest = tmp_path_factory.mktemp("eval-space") / "collab"
    data = {"challenge_type": "tsp", "verification_mode": "eval-space", "jobs_enabled": False}
    copier.run_copy(str(ROOT), dest, data=data, defaults=True, vcs_ref="HEAD", quiet=True)
    return dest


@pytest.fixture
def collab(rendered: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "collab"
    shutil.copytree(rendered, dest, ignore=shutil.ignore_patterns(".git", ".collab"))
    return dest


def test_only_an_eval_space_collab_gets_the_eval_service(rendered: Path, example_spec: Path) -> None:
    assert (rendered / "eval" / "collab_eval" / "checker.py").is_file()
    assert (rendered / "eval" / "Dockerfile").is_file()
    card = (rendered / "eval" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\ntitle: ") and "sdk: docker" in card and "eval service" in card
    assert not (example_spec.parent / "eval").exists()  # the default collab verifies by jobs


def test_plan_and_apply_provision_a_private_eval_space_in_the_admin_org_with_the_types_check(
    collab: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = FakeHub()
    hub.add_user(USER, TOKEN, {ORG: "admin", ADMIN_ORG: "admin"})
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr("provision.hub.client.connect", lambda: hub)
    spec = local_target(collab).loaded.spec
    eval_id = spec.spaces.eval.id
    assert eval_id.startswith(f"{spec.challenge.admin_org}/")
    assert main(["plan", str(collab)]) == 2
    out = capsys.readouterr().out
    assert "space.eval" in out and eval_id in out
    assert main(["apply", "--poll-interval", "0", str(collab)]) == 0, capsys.readouterr()
    capsys.readouterr()
    space = hub.spaces[eval_id]
    assert space.private is True and space.sdk == "docker"
    for path in ("Dockerfile", "collab_eval/main.py", "collab_eval/one_check.py",
                 "provision/challenge_types/contract.py", "schemas/challenge.schema.json", "challenge_tsp/check.py",
                 "challenge_tsp/harness/instance.json"):  # fmt: skip
        assert path in space.files, path
    assert not any("__pycache__" in p for p in space.files)
    assert "HF_TOKEN" in space.secrets
    assert main(["plan", str(collab)]) == 0, capsys.readouterr().out  # in sync: the bundled files included


def _claim(api: str, collab: Path, token: str, agent: str, name: str, length: int | None = None) -> str:
    target = local_target(collab)
    bucket = f"{target.loaded.spec.challenge.org}/{target.loaded.spec.challenge.slug}-{agent}"
    folder = target.bucket_dir(bucket)
    text = EXAMPLE.read_text(encoding="utf-8")
    if length is not None:
        text = text.replace("tour_length: 298115", f"tour_length: {length}")
    (folder / "results").mkdir(parents=True, exist_ok=True)
    (folder / "results" / f"{name}.md").write_text(text, encoding="utf-8")
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{api}/v1/results", json={"agent_id": agent, "path": f"results/{name}.md"},
                          headers=headers, timeout=10)  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_collab_up_runs_the_eval_service_which_rules_on_claims_and_stops_by_pid(
    collab: Path, port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLLAB_EVAL_POLL_S", "0.5")
    assert main(["apply", "--target", "local", str(collab)]) == 0
    capsys.readouterr()
    tokens = local_tokens(local_target(collab))
    up = Proc("provision.cli", "up", str(collab), "--port", str(port), "--no-dashboard")
    backend_pid = eval_pid = None
    try:
        match = up.wait_for(r"Backend running at (\S+) \(pid (\d+);[\s\S]*Eval running at (\S+) \(pid (\d+); "
                            r"log \.collab/logs/eval\.log\)[\s\S]*Press Ctrl-C")  # fmt: skip
        api, backend_pid, eval_url, eval_pid = match.group(1), int(match.group(2)), match.group(3), int(match.group(4))
        assert eval_url == f"http://127.0.0.1:{port + 1}"
        recorded = json.loads((collab / ".collab" / "processes.json").read_text(encoding="utf-8"))["processes"]
        assert [(r["name"], r["pid"]) for r in recorded] == [("backend", backend_pid), ("eval", eval_pid)]
        token = tokens["participant-1"]
        target = local_target(collab)
        bucket = target.bucket_dir(f"{target.loaded.spec.challenge.org}/{target.loaded.spec.challenge.slug}-tourist")
        bucket.mkdir(parents=True, exist_ok=True)
        (bucket / "collab-handshake.txt").write_text("participant-1", encoding="utf-8")
        joined = httpx.post(f"{api}/v1/agents", json={"agent_id": "tourist"},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
        assert joined.status_code == 201, joined.text
        honest = _claim(api, collab, token, "tourist", "honest")
        forged = _claim(api, collab, token, "tourist", "forged", length=1000)
        deadline = time.monotonic() + 60
        shown: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline:
            shown = {rid: httpx.get(f"{api}/v1/results/{rid}", timeout=10).json() for rid in (honest, forged)}
            if all(s["verdict_by"] == "verifier:eval-space" for s in shown.values()):
                break
            time.sleep(0.25)
        assert (shown[honest]["verdict"], shown[honest]["verdict_by"]) == ("valid", "verifier:eval-space"), shown
        assert (shown[forged]["verdict"], shown[forged]["verdict_by"]) == ("invalid", "verifier:eval-space"), shown
        health = httpx.get(f"{eval_url}/healthz", timeout=10).json()
        assert health["ok"] is True and health["decided"] >= 2
        assert main(["status", "--target", "local", str(collab)]) == 0
        status = capsys.readouterr().out
        assert "eval" in status and f"running at {eval_url} (pid {eval_pid}" in status, status
        log = (collab / ".collab" / "logs" / "eval.log").read_text(encoding="utf-8")
        assert token not in log and tokens["organizer"] not in log
    finally:
        stop(up, eval_pid, backend_pid)
    assert eval_pid is not None and not pid_alive(eval_pid)
    assert backend_pid is not None and not pid_alive(backend_pid)
    assert "eval: exit 0" in up.output, up.output
