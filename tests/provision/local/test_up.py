"""`collab up` as a real process: render -> apply -> up -> register -> post -> result -> leaderboard
-> the dashboard shows them -> down.

Every process a test starts is stopped by its PID in a `finally`, and each test checks that the
servers `collab up` started are gone afterwards. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
from pathlib import Path

import httpx
import pytest
from local_harness import Proc, alive, run_cli, stop

from provision.cli import main
from provision.local.target import IDENTITY_FILE, local_target, local_tokens


def result_file(spec: dict, parents: list[str]) -> str:
    """A result's Markdown with every field the spec requires (names read from the spec)."""
    scoring = spec["scoring"]
    fields = {scoring["score_field"]: 201.5, "method": "bf16 baseline, measured by hand", "parents": parents}
    fields.update({m["field"]: 2.3 for m in scoring["metrics"]})
    if scoring["tracks"]:
        fields["track"] = scoring["tracks"][0]["name"]
    fields["fingerprint"] = "sha256:" + "ab" * 32
    assert set(scoring["required_fields"]) <= set(fields)
    return "---\n" + json.dumps(fields) + "\n---\n\nThe baseline.\n"


def test_render_apply_up_register_post_result_leaderboard_dashboard_down(
    collab: Path, port: int, dashboard_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--target", "local", str(collab)]) == 0
    capsys.readouterr()
    target = local_target(collab)
    tokens = local_tokens(target)
    spec = target.loaded.document
    org, slug = spec["challenge"]["org"], spec["challenge"]["slug"]

    up = Proc("provision.cli", "up", str(collab), "--port", str(port), "--dashboard-port", str(dashboard_port))
    backend_pid = dashboard_pid = None
    try:
        match = up.wait_for(
            r"Backend running at (\S+) \(pid (\d+); log \.collab/logs/backend\.log\)\n"
            r"Dashboard running at (\S+) \(pid (\d+); log \.collab/logs/dashboard\.log\)\n[\s\S]*Press Ctrl-C to stop\."
        )
        out = up.output
        url, backend_pid, web, dashboard_pid = match.group(1), int(match.group(2)), match.group(3), int(match.group(4))
        assert url == f"http://127.0.0.1:{port}" and web == f"http://127.0.0.1:{dashboard_port}"
        assert f"  dashboard    {web}/\n  API          {url}/v1\n  docs         {url}/docs\n" in out
        assert f"digest       {url}/v1/digest/<agent_id>" in out and IDENTITY_FILE in out
        assert alive(backend_pid) and alive(dashboard_pid) and len({backend_pid, dashboard_pid, up.pid}) == 3
        recorded = json.loads((collab / ".collab" / "processes.json").read_text(encoding="utf-8"))["processes"]
        assert [(r["name"], r["pid"], r["url"], r["log"]) for r in recorded] == [
            ("backend", backend_pid, url, ".collab/logs/backend.log"),
            ("dashboard", dashboard_pid, web, ".collab/logs/dashboard.log"),
        ]
        code, status = run_cli(capsys, collab, "status")
        assert code == 0, status
        shown = rf"\n  dashboard +running at {web} \(pid {dashboard_pid}, since \S+\); /healthz answers\n"
        assert re.search(shown, status), status

        with httpx.Client(base_url=url, timeout=10) as api:
            assert api.get("/v1/healthz").json()["ok"] is True
            assert api.get("/v1").json()["central_bucket"] == spec["storage"]["central_bucket"]
            # The agent's user writes the scratch bucket (a folder of the folder hub), then registers.
            bucket = collab / ".collab" / "hub" / "buckets" / f"{org}/{slug}-scout"
            bucket.mkdir(parents=True)
            (bucket / "collab-handshake.txt").write_text("participant-1", encoding="utf-8")
            me = {"Authorization": f"Bearer {tokens['participant-1']}"}
            registered = api.post("/v1/agents", json={"agent_id": "scout"}, headers=me)
            assert registered.status_code == 201, registered.text
            stranger = api.post("/v1/agents", json={"agent_id": "scout"}, headers={"Authorization": "Bearer nope"})
            assert stranger.status_code == 401

            posted = api.post("/v1/messages", json={"agent_id": "scout", "body": "hello all"}, headers=me)
            assert posted.status_code == 201, posted.text
            (bucket / "results").mkdir()
            (bucket / "results" / "base.md").write_text(result_file(spec, []), encoding="utf-8")
            filed = api.post("/v1/results", json={"agent_id": "scout", "path": "results/base.md"}, headers=me)
            assert filed.status_code == 201, filed.text
            result_id = filed.json()["id"]

            board = api.get("/v1/leaderboard").json()
            standings = [s for b in board["boards"] for s in b["standings"]]
            assert [(s["agent"], s["result_id"], s["score"], s["pending"]) for s in standings] == [
                ("scout", result_id, 201.5, True)
            ]
            assert api.get("/v1/messages").json()["items"][0]["id"] == posted.json()["id"]

        # The dashboard reads the backend on loopback: the post and the ranked result are on its pages.
        with httpx.Client(base_url=web, timeout=10) as dashboard:
            health = dashboard.get("/healthz").json()
            assert health["ok"] is True and health["backend"] == url
            board = dashboard.get("/board")
            assert board.status_code == 200 and "hello all" in board.text
            assert "default-src 'none'" in board.headers["content-security-policy"]
            standings = dashboard.get("/leaderboard").text
            assert "scout" in standings and f"/results/{result_id}" in standings
            # Local sign-in with a token of the identity file, then a post as that person, through the backend.
            login = dashboard.get("/login")
            assert 'id="token"' in login.text and "/oauth/" not in login.text
            signed = dashboard.post("/login", data={"csrf": _csrf(login.text), "token": tokens["participant-2"]})
            assert signed.status_code == 303, signed.text
            page = dashboard.get("/board")
            assert "participant-2" in page.text
            sent = dashboard.post("/post", data={"csrf": _csrf(page.text), "body": "hi from a person", "channel": ""})
            assert sent.status_code == 303, sent.text
        with httpx.Client(base_url=url, timeout=10) as api:
            newest = api.get("/v1/messages").json()["items"][0]
            assert (newest["author"], newest["body"]) == ("human-participant-2", "hi from a person")

        # The record is in the folder hub, written by the backend.
        central = collab / ".collab" / "hub" / "buckets" / spec["storage"]["central_bucket"]
        assert (central / "agents" / "scout.json").is_file()

        up.process.send_signal(signal.SIGINT)
        assert up.finish(timeout=30) == 0
        rest = up.output
        assert f"Stopping the dashboard (pid {dashboard_pid})...\nStopping the backend (pid {backend_pid})..." in rest
        assert "Stopped (dashboard: exit 0, backend: exit 0)." in rest
        for pid in (backend_pid, dashboard_pid):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert not (collab / ".collab" / "processes.json").exists()
        assert (collab / ".collab" / "logs" / "dashboard.log").is_file()
        for token in tokens.values():
            assert token not in rest
    finally:
        stop(up, dashboard_pid, backend_pid)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def test_sigterm_stops_it_too(collab: Path, port: int) -> None:
    log = collab / ".collab" / "logs" / "backend.log"  # the log of an earlier run, say one that crashed
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("Traceback of the run before\n", encoding="utf-8")
    up = Proc("provision.cli", "up", str(collab), "--port", str(port), "--no-dashboard")
    backend_pid = None
    try:
        backend_pid = int(up.wait_for(r"\(pid (\d+);[\s\S]*Press Ctrl-C").group(1))
        assert "Dashboard" not in up.output and "dashboard" not in up.output
        up.process.send_signal(signal.SIGTERM)
        assert up.finish(timeout=30) == 0
        assert not alive(backend_pid)
        assert log.read_text(encoding="utf-8").startswith("Traceback of the run before\n")  # appended to, not truncated
    finally:
        stop(up, backend_pid)


@pytest.mark.parametrize("taken", ["backend", "dashboard"])
def test_port_in_use_is_a_clear_error(collab: Path, port: int, dashboard_port: int, taken: str) -> None:
    busy, option = (port, "--port") if taken == "backend" else (dashboard_port, "--dashboard-port")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        up = Proc("provision.cli", "up", str(collab), "--port", str(port), "--dashboard-port", str(dashboard_port))
        try:
            code = up.finish(timeout=60)
        finally:
            stop(up)
    out = up.output
    assert code == 1
    assert f"collab up: port {busy} on 127.0.0.1 is in use" in out and f"{option} N" in out
    assert "Traceback" not in out and "running at" not in out  # both ports are checked before either starts


@pytest.mark.parametrize("broken", ["backend", "dashboard"])
def test_a_server_that_dies_at_start_shows_its_log_and_stops_the_rest(
    collab: Path, port: int, dashboard_port: int, broken: str
) -> None:
    init = collab / broken / f"collab_{broken}" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + '\nraise RuntimeError("broken on purpose")\n', encoding="utf-8")
    up = Proc("provision.cli", "up", str(collab), "--port", str(port), "--dashboard-port", str(dashboard_port))
    try:
        code = up.finish(timeout=90)
    finally:
        stop(up)
    out = up.output
    assert code == 1
    assert f"the {broken} exited during start" in out and "RuntimeError: broken on purpose" in out
    assert "Press Ctrl-C" not in out
    for taken in (port, dashboard_port):  # the backend started before a broken dashboard is stopped
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", taken), timeout=1):
            pytest.fail(f"something still listens on port {taken}")
    assert not (collab / ".collab" / "processes.json").exists()


def test_a_collab_without_a_dashboard_folder_is_told_how_to_get_one(
    collab: Path, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(collab / "dashboard")
    assert main(["up", str(collab), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert "collab up: this collab has no dashboard/collab_dashboard/" in err
    assert "`copier update` adds it; `collab up --no-dashboard` runs the backend alone" in err
    assert not (collab / ".collab" / "processes.json").exists()
