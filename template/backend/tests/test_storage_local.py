"""The folder adapter refuses what a participant can plant in its folder: symlinks, hard links,
named pipes, and files too large to read."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from collab_backend.storage import Add, Copy, InvalidPath, NotFound, PartialWrite, TooLarge
from collab_backend.storage.local import LocalStorage

BUCKET = "acme/fast-speedy"


@pytest.fixture
def planted(tmp_path: Path) -> tuple[LocalStorage, Path]:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("the organizers' token", encoding="utf-8")
    storage = LocalStorage(tmp_path / "hub")
    storage.create_bucket(BUCKET)
    storage.batch(BUCKET, [Add("posts/real.md", b"real")])
    storage.create_bucket("acme/fast-main")
    folder = storage.bucket_dir(BUCKET)
    (folder / "link.md").symlink_to(secret)
    (folder / "dir").symlink_to(secret.parent, target_is_directory=True)
    return storage, secret


def test_a_file_symlink_is_neither_read_stat_copied_nor_written_through(planted: tuple[LocalStorage, Path]) -> None:
    storage, secret = planted
    with pytest.raises(InvalidPath):
        storage.read(BUCKET, "link.md")
    with pytest.raises(InvalidPath):
        storage.stat(BUCKET, ["link.md"])
    with pytest.raises(PartialWrite, match="symlink"):  # a copy's source fails alone, as in a Hub batch
        storage.batch("acme/fast-main", [Copy(BUCKET, "link.md", "h", "stolen.md")])
    assert storage.list("acme/fast-main").items == []
    with pytest.raises(InvalidPath):
        storage.batch(BUCKET, [Add("link.md", b"overwritten")])
    assert secret.read_text(encoding="utf-8") == "the organizers' token"


def test_a_directory_symlink_is_not_a_way_out(planted: tuple[LocalStorage, Path]) -> None:
    storage, secret = planted
    with pytest.raises(InvalidPath):
        storage.read(BUCKET, "dir/secret.txt")
    with pytest.raises(InvalidPath):
        storage.batch(BUCKET, [Add("dir/new.txt", b"x")])
    with pytest.raises(InvalidPath):
        storage.list(BUCKET, "dir/")
    assert not (secret.parent / "new.txt").exists()


def test_listing_skips_symlinks_and_a_symlinked_bucket_is_refused(
    planted: tuple[LocalStorage, Path], tmp_path: Path
) -> None:
    storage, _ = planted
    assert [f.path for f in storage.list(BUCKET).items] == ["posts/real.md"]
    storage.bucket_dir("acme/fast-other").parent.mkdir(parents=True, exist_ok=True)
    storage.bucket_dir("acme/fast-other").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(InvalidPath):
        storage.list("acme/fast-other")
    with pytest.raises(InvalidPath):
        storage.read("acme/fast-other", "secret.txt")


# -- what a participant can put in its own folder that the Hub cannot hold ------------------------
def _in_thread(call, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Run `call` in a thread; a call that blocks (a pipe opened for reading) fails the test instead of hanging it."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(("ok", call()))
        except Exception as exc:
            outcome.append(("raised", exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "the call blocked"
    return outcome[0]


def test_a_named_pipe_is_no_file_and_never_blocks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "hub")
    storage.create_bucket(BUCKET)
    storage.batch(BUCKET, [Add("sub/real.txt", b"real")])
    os.mkfifo(storage.bucket_dir(BUCKET) / "sub" / "pipe")
    assert _in_thread(lambda: storage.stat(BUCKET, ["sub/pipe"])) == ("ok", {})
    listed = _in_thread(lambda: [f.path for f in storage.list(BUCKET, "sub/").items])
    assert listed == ("ok", ["sub/real.txt"])
    kind, error = _in_thread(lambda: storage.read(BUCKET, "sub/pipe"))
    assert kind == "raised" and isinstance(error, NotFound)


def test_a_hard_link_is_refused_like_a_symlink(planted: tuple[LocalStorage, Path]) -> None:
    storage, secret = planted
    os.link(secret, storage.bucket_dir(BUCKET) / "hard.md")
    with pytest.raises(InvalidPath, match="hard link"):
        storage.read(BUCKET, "hard.md")
    with pytest.raises(InvalidPath, match="hard link"):
        storage.stat(BUCKET, ["hard.md"])
    with pytest.raises(PartialWrite, match="hard link"):
        storage.batch("acme/fast-main", [Copy(BUCKET, "hard.md", "h", "stolen.md")])
    assert [f.path for f in storage.list(BUCKET).items] == ["posts/real.md"]


def test_a_huge_sparse_file_is_sized_before_a_byte_is_read(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "hub", max_hashed_bytes=1 << 20)
    storage.create_bucket(BUCKET)
    huge = storage.bucket_dir(BUCKET) / "huge.md"
    with huge.open("wb") as out:
        out.truncate(1 << 30)  # 1 GiB that takes no disk
    tracemalloc.start()
    try:
        info = storage.stat(BUCKET, ["huge.md"])["huge.md"]
        with pytest.raises(TooLarge):
            storage.read(BUCKET, "huge.md", max_bytes=32_768)
        with pytest.raises(PartialWrite, match="too large"):
            storage.batch(BUCKET, [Copy(BUCKET, "huge.md", info.hash, "copy.md")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size == 1 << 30 and peak < 8 << 20


def test_hashes_and_copies_read_in_chunks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "hub")
    storage.create_bucket(BUCKET)
    data = os.urandom(8 << 20)
    storage.batch(BUCKET, [Add("big.bin", data)])
    tracemalloc.start()
    try:
        info = storage.stat(BUCKET, ["big.bin"])["big.bin"]
        storage.batch(BUCKET, [Copy(BUCKET, "big.bin", info.hash, "copy.bin")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.hash == hashlib.sha256(data).hexdigest() and peak < 4 << 20  # chunks, not 8 MiB at once
    assert storage.read(BUCKET, "copy.bin") == data
    with pytest.raises(PartialWrite, match="no longer has content"):
        storage.batch(BUCKET, [Copy(BUCKET, "big.bin", "0" * 64, "wrong.bin")])
    assert storage.stat(BUCKET, ["wrong.bin"]) == {}
