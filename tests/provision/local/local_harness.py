"""Helpers of the local target's tests: a `python -m` process of this checkout, read as it runs, stopped by PID."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0


def run_cli(capsys: Any, collab: Path, *argv: str) -> tuple[int, str]:
    """`collab <argv> --target local <collab>` in process: its exit code and output, checked for leaked tokens."""
    from provision.cli import main
    from provision.local.target import IDENTITY_FILE

    code = main([*argv, "--target", "local", str(collab)])
    captured = capsys.readouterr()
    output = str(captured.out + captured.err)
    try:
        tokens = list(json.loads((collab / IDENTITY_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        tokens = []
    for token in tokens:
        assert token not in output, "a local token leaked into the output"
    return code, output


class Proc:
    """`python -m <module> ...` from this checkout (the code under test), its output gathered by a thread."""

    def __init__(self, *argv: str, cwd: Path = ROOT) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.pid = self.process.pid
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """Wait until the output matches `pattern` (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} did not appear; output:\n{self.output}")

    def finish(self, timeout: float) -> int:
        """Wait for the exit and the last of the output; returns the exit status."""
        code = self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(proc: Proc, *pids: int | None) -> None:
    """Stop a started process and the servers it started, by PID, whatever state the test left them in."""
    process = proc.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in pids:
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
