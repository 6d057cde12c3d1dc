"""`collab verify sweep`: an organizer reconciles verification on the backend `collab up` runs.

The backend runs as a real process (a `collab up` subprocess), stopped by its PID in a `finally`.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_harness import Proc, alive, run_cli, stop

from provision.cli import main
from provision.local.target import local_target, local_tokens


def test_verify_sweep_against_the_running_backend_and_a_participant_is_refused(
    collab: Path, port: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["apply", "--target", "local", str(collab)]) == 0
    capsys.readouterr()
    code, out = run_cli(capsys, collab, "verify", "sweep")
    assert code == 1 and "collab verify sweep: no local backend is running: `collab up` starts one" in out, out
    up = Proc("provision.cli", "up", str(collab), "--port", str(port), "--no-dashboard")
    backend_pid = None
    try:
        backend_pid = int(up.wait_for(r"\(pid (\d+);[\s\S]*Press Ctrl-C").group(1))
        url = f"http://127.0.0.1:{port}"
        code, out = run_cli(capsys, collab, "verify", "sweep")
        assert code == 0, out
        assert out.splitlines()[:5] == [
            f"Verification sweep of {url} (mode jobs):",
            "  index: took in 0 hand edit(s)",
            "  0 verdict(s) recorded",
            "  0 re-run(s) started",
            "  0 re-run(s) in flight",
        ]
        code, out = run_cli(capsys, collab, "verify", "sweep", "--json")
        assert code == 0 and json.loads(out)["recorded"] == [], out
        # The Hub target's path (a token from HF_TOKEN, the backend's address) against this backend:
        participant = local_tokens(local_target(collab))["participant-1"]
        monkeypatch.setenv("HF_TOKEN", participant)
        code = main(["verify", "sweep", "--target", "hub", "--url", url, str(collab)])
        out = capsys.readouterr().err
        assert code == 1, out
        assert "refused the sweep: NOT_ORGANIZER: only admins of the challenge org sweep verification" in out
        assert participant not in out
    finally:
        stop(up, backend_pid)
    assert backend_pid is not None and not alive(backend_pid)
