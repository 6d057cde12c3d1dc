"""`collab up` as a real process: render -> apply -> up -> register -> post -> result -> leaderboard -> down.

Every process a test starts is stopped by its PID in a `finally`, and each test checks that the
backend `collab up` started is gone afterwards. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest
from local_harness import Proc, alive, stop

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


def test_render_apply_up_register_post_result_leaderboard_down(
    collab: Path, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--target", "local", str(collab)]) == 0
    capsys.readouterr()
    target = local_target(collab)
    tokens = local_tokens(target)
    spec = target.loaded.document
    org, slug = spec["challenge"]["org"], spec["challenge"]["slug"]

    up = Proc("provision.cli", "up", str(collab), "--port", str(port))
    backend_pid = None
    try:
        match = up.wait_for(r"Backend running at (\S+) \(pid (\d+);[\s\S]*Press Ctrl-C to stop\.")
        out = up.output
        url, backend_pid = match.group(1), int(match.group(2))
        assert url == f"http://127.0.0.1:{port}"
        assert f"  API          {url}/v1" in out and f"  docs         {url}/docs" in out
        assert f"digest       {url}/v1/digest/<agent_id>" in out and IDENTITY_FILE in out
        assert alive(backend_pid) and backend_pid != up.pid

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

        # The record is in the folder hub, written by the backend.
        central = collab / ".collab" / "hub" / "buckets" / spec["storage"]["central_bucket"]
        assert (central / "agents" / "scout.json").is_file()

        up.process.send_signal(signal.SIGINT)
        assert up.finish(timeout=30) == 0
        rest = up.output
        assert f"Stopping the backend (pid {backend_pid})" in rest and "Stopped (exit 0)." in rest
        with pytest.raises(ProcessLookupError):
            os.kill(backend_pid, 0)
        for token in tokens.values():
            assert token not in rest
    finally:
        stop(up, backend_pid)


def test_sigterm_stops_it_too(collab: Path, port: int) -> None:
    log = collab / ".collab" / "logs" / "backend.log"  # the log of an earlier run, say one that crashed
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("Traceback of the run before\n", encoding="utf-8")
    up = Proc("provision.cli", "up", str(collab), "--port", str(port))
    backend_pid = None
    try:
        backend_pid = int(up.wait_for(r"\(pid (\d+);[\s\S]*Press Ctrl-C").group(1))
        up.process.send_signal(signal.SIGTERM)
        assert up.finish(timeout=30) == 0
        assert not alive(backend_pid)
        assert log.read_text(encoding="utf-8").startswith("Traceback of the run before\n")  # appended to, not truncated
    finally:
        stop(up, backend_pid)


def test_port_in_use_is_a_clear_error(collab: Path, port: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        up = Proc("provision.cli", "up", str(collab), "--port", str(port))
        try:
            code = up.finish(timeout=60)
        finally:
            stop(up, None)
    out = up.output
    assert code == 1
    assert f"collab up: port {port} on 127.0.0.1 is in use" in out and "--port N" in out
    assert "Traceback" not in out and "Backend running" not in out


def test_a_backend_that_dies_at_start_shows_its_log(collab: Path, port: int) -> None:
    init = collab / "backend" / "collab_backend" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + '\nraise RuntimeError("broken on purpose")\n', encoding="utf-8")
    up = Proc("provision.cli", "up", str(collab), "--port", str(port))
    try:
        code = up.finish(timeout=90)
    finally:
        stop(up, None)
    out = up.output
    assert code == 1
    assert "the backend exited during start" in out and "RuntimeError: broken on purpose" in out
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pytest.fail("something still listens on the port")
