"""The folder adapter refuses to follow a symlink planted inside the hub's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab_backend.storage import Add, Copy, InvalidPath, PartialWrite
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
