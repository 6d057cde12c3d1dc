"""The local adapter's writer process: large batches are written by a child process with the same
checks, a child that dies loses no batch, and the child is stopped by PID (or ends by itself when
its parent dies)."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.storage import Add, Copy, Delete, InvalidPath, PartialWrite
from collab_backend.storage import local as local_module
from collab_backend.storage.local import LocalStorage
from collab_backend.storage.local_writer import decode_ops, encode_ops, outcome_of, raise_outcome

BUCKET = "acme/main"
BACKEND = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (ended, not yet reaped by its parent) counts as ended
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "hub", writer_process=True)
    storage.create_bucket(BUCKET)
    yield storage
    storage.close()


def _board(n: int, start: int = 0) -> list[Add]:
    return [Add(f"message_board/{i:05d}.md", f"message {i}".encode()) for i in range(start, start + n)]


def test_a_large_batch_is_written_by_the_child_and_a_small_one_in_process(store: LocalStorage) -> None:
    store.batch(BUCKET, _board(2))
    assert store.writer is not None and store.writer.pid is None  # below WRITER_PROCESS_AT: no child
    store.batch(BUCKET, _board(local_module.WRITER_PROCESS_AT, start=2))
    pid = store.writer.pid
    assert pid is not None and pid != os.getpid() and _alive(pid)
    assert store.read(BUCKET, "message_board/00002.md") == b"message 2"
    assert len(store.paths(BUCKET, "message_board/")) == local_module.WRITER_PROCESS_AT + 2
    store.close()
    assert _gone_within(pid, 10)  # stopped by PID at close
    store.batch(BUCKET, _board(local_module.WRITER_PROCESS_AT, start=100))  # after close: written in-process
    assert store.writer.pid is None and store.read(BUCKET, "message_board/00100.md") == b"message 100"


def test_the_child_refuses_what_the_parent_refuses(store: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.bucket_dir(BUCKET) / "dir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidPath):
        store.batch(BUCKET, [*_board(local_module.WRITER_PROCESS_AT), Add("dir/planted.md", b"x")])
    assert not (outside / "planted.md").exists()
    assert store.paths(BUCKET, "message_board/") == []  # refused before anything was written
    copies = [Copy(BUCKET, "missing.md", "0" * 64, f"copies/{i}.md") for i in range(local_module.WRITER_PROCESS_AT)]
    with pytest.raises(PartialWrite) as partial:
        store.batch(BUCKET, copies)
    assert len(partial.value.failures) == local_module.WRITER_PROCESS_AT
    assert store.writer is not None and store.writer.pid is not None


def test_a_child_that_died_loses_no_batch_and_is_started_again(store: LocalStorage) -> None:
    store.batch(BUCKET, _board(local_module.WRITER_PROCESS_AT))
    assert store.writer is not None
    first = store.writer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert _gone_within(first, 10)
    store.batch(BUCKET, _board(local_module.WRITER_PROCESS_AT, start=100))  # written in-process, nothing lost
    assert store.read(BUCKET, "message_board/00115.md") == b"message 115"
    store.batch(BUCKET, _board(local_module.WRITER_PROCESS_AT, start=200))  # the next batch starts a new child
    assert store.writer.pid not in (None, first) and store.read(BUCKET, "message_board/00200.md") == b"message 200"


def test_the_child_ends_by_itself_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from collab_backend.storage import Add\n"
        "from collab_backend.storage.local import LocalStorage, WRITER_PROCESS_AT\n"
        "s = LocalStorage(Path(sys.argv[1]), writer_process=True)\n"
        "s.create_bucket('acme/main')\n"
        "s.batch('acme/main', [Add(f'f{i}', b'x') for i in range(WRITER_PROCESS_AT)])\n"
        "print(s.writer.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(BACKEND)}
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "hub")], stdout=subprocess.PIPE, env=env)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
    finally:
        parent.kill()  # SIGKILL: no clean-up of its own runs
        parent.wait()
    assert _gone_within(child, 10)  # its pipe closed with its parent: it ended


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(Add, st.text(min_size=1, max_size=40), st.binary(max_size=200)),
            st.builds(Copy, st.text(max_size=20), st.text(max_size=20), st.text(max_size=64), st.text(max_size=20)),
            st.builds(Delete, st.text(min_size=1, max_size=40)),
        ),
        max_size=20,
    )
)
def test_any_batch_crosses_the_pipe_unchanged(ops: list[Add | Copy | Delete]) -> None:
    carried = marshal.loads(marshal.dumps(encode_ops(ops)))  # noqa: S302  # what the pipe carries
    assert decode_ops(carried) == ops


@pytest.mark.parametrize(
    "raised",
    [PartialWrite([("a.md", "refused"), ("b.md", "gone")]), InvalidPath("path leads through a symlink: 'x'")],
)
def test_an_outcome_crosses_the_pipe_as_the_same_error(raised: Exception) -> None:
    def apply() -> None:
        raise raised

    outcome = marshal.loads(marshal.dumps(outcome_of(apply)))  # noqa: S302  # what the pipe carries
    with pytest.raises(type(raised)) as again:
        raise_outcome(outcome)
    assert str(again.value) == str(raised)
