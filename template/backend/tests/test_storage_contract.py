"""One contract, two adapters: the local folder (in-process and through its writer process) and the Hub
(over the stateful fake) behave alike."""

from __future__ import annotations

import pytest

from collab_backend.storage import Add, Copy, Delete, InvalidPath, NotFound, PartialWrite, Storage

MAIN, AGENT = "acme/main", "acme/agent"


@pytest.fixture(params=["local", "local-writer-process", "hub"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    """Each adapter, and the local one writing through its child process (conftest.py's `storage`)."""
    return str(request.param)


def put(storage: Storage, bucket: str, files: dict[str, bytes]) -> None:
    storage.batch(bucket, [Add(path, data) for path, data in files.items()])


def test_write_then_read_and_stat(storage: Storage) -> None:
    put(storage, MAIN, {"message_board/a.md": b"hello", "README.md": "héllo ✓".encode()})
    assert storage.read(MAIN, "message_board/a.md") == b"hello"
    info = storage.stat(MAIN, ["message_board/a.md", "README.md", "missing.md"])
    assert set(info) == {"message_board/a.md", "README.md"}
    assert info["message_board/a.md"].size == 5
    assert info["README.md"].hash != info["message_board/a.md"].hash


def test_overwrite_is_last_writer_wins(storage: Storage) -> None:
    put(storage, MAIN, {"x.md": b"one"})
    first = storage.stat(MAIN, ["x.md"])["x.md"].hash
    put(storage, MAIN, {"x.md": b"two"})
    assert storage.read(MAIN, "x.md") == b"two"
    assert storage.stat(MAIN, ["x.md"])["x.md"].hash != first


def test_same_content_same_hash(storage: Storage) -> None:
    put(storage, MAIN, {"a": b"same", "b": b"same"})
    info = storage.stat(MAIN, ["a", "b"])
    assert info["a"].hash == info["b"].hash


def test_read_missing_raises_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.read(MAIN, "nope.md")


def test_listing_is_by_folder_not_by_string_prefix(storage: Storage) -> None:
    put(storage, MAIN, {"logs/a": b"1", "logs/sub/b": b"2", "logs.json": b"3", "logs_backup/c": b"4"})
    paths = [f.path for f in storage.list(MAIN, "logs/").items]
    assert paths == ["logs/a", "logs/sub/b"]


def test_listing_everything_in_path_order(storage: Storage) -> None:
    put(storage, MAIN, {"b": b"", "a/z": b"", "a/b": b""})
    assert [f.path for f in storage.list(MAIN).items] == ["a/b", "a/z", "b"]


def test_pagination_walks_every_file_once(storage: Storage) -> None:
    names = {f"inbox/bob/{i:03d}.md": str(i).encode() for i in range(25)}
    put(storage, MAIN, names)
    seen, cursor, pages = [], None, 0
    while True:
        page = storage.list(MAIN, "inbox/", cursor=cursor, limit=10)
        seen += [f.path for f in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(names)
    assert pages == 3


def test_paths_are_the_listing_s_without_pages(storage: Storage) -> None:
    put(storage, MAIN, {f"idx/{i:04d}": b"x" for i in range(1005)} | {"idx.json": b"", "idx2/a": b""})
    listed, cursor = [], None
    while True:
        page = storage.list(MAIN, "idx/", cursor=cursor)
        listed += [f.path for f in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert storage.paths(MAIN, "idx/") == listed and len(listed) == 1005
    assert storage.paths(MAIN, "nothing/") == [] and storage.paths(MAIN)[:2] == ["idx.json", "idx/0000"]
    with pytest.raises(NotFound):
        storage.paths("org/missing-bucket")


def test_listing_an_empty_or_absent_folder(storage: Storage) -> None:
    assert storage.list(MAIN, "nothing/").items == []


def test_listing_a_missing_bucket(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.list("acme/absent")


def test_bucket_exists(storage: Storage) -> None:
    assert storage.bucket_exists(MAIN)
    assert not storage.bucket_exists("acme/absent")


def test_delete_and_delete_missing(storage: Storage) -> None:
    put(storage, MAIN, {"a": b"1", "b": b"2"})
    storage.batch(MAIN, [Delete("a"), Delete("never-existed")])
    assert set(storage.stat(MAIN, ["a", "b"])) == {"b"}


def test_copy_by_hash_between_buckets(storage: Storage) -> None:
    put(storage, AGENT, {"drafts/post.md": b"my post"})
    info = storage.stat(AGENT, ["drafts/post.md"])["drafts/post.md"]
    storage.batch(MAIN, [Copy(AGENT, "drafts/post.md", info.hash, "message_board/1.md")])
    assert storage.read(MAIN, "message_board/1.md") == b"my post"


def test_copy_of_a_hash_the_source_never_had_fails(storage: Storage) -> None:
    put(storage, AGENT, {"drafts/post.md": b"my post"})
    with pytest.raises(PartialWrite) as caught:
        storage.batch(MAIN, [Copy(AGENT, "drafts/post.md", "0" * 64, "message_board/1.md")])
    assert [p for p, _ in caught.value.failures] == ["message_board/1.md"]
    assert storage.stat(MAIN, ["message_board/1.md"]) == {}


def test_a_batch_reports_what_failed_and_keeps_what_applied(storage: Storage) -> None:
    put(storage, AGENT, {"ok.md": b"ok"})
    good = storage.stat(AGENT, ["ok.md"])["ok.md"].hash
    with pytest.raises(PartialWrite) as caught:
        storage.batch(
            MAIN,
            [Add("first.md", b"1"), Copy(AGENT, "gone.md", "f" * 64, "copied.md"), Copy(AGENT, "ok.md", good, "c2.md")],
        )
    assert [p for p, _ in caught.value.failures] == ["copied.md"]
    assert set(storage.stat(MAIN, ["first.md", "copied.md", "c2.md"])) == {"first.md", "c2.md"}


def test_writing_a_missing_bucket_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.batch("acme/absent", [Add("a", b"1")])


@pytest.mark.parametrize(
    "path",
    ["../escape", "a/../../b", "/abs", "a//b", "./a", "a/./b", "a\\b", "dir/", "", "a\x00b", "a\nb", "x" * 600],
)
def test_unsafe_paths_are_refused_everywhere(storage: Storage, path: str) -> None:
    with pytest.raises(InvalidPath):
        storage.batch(MAIN, [Add(path, b"x")])
    with pytest.raises(InvalidPath):
        storage.read(MAIN, path)
    with pytest.raises(InvalidPath):
        storage.stat(MAIN, [path])


@pytest.mark.parametrize("bucket", ["../x/y", "acme", "acme/main/extra", "acme/../main", "a--b/c", ""])
def test_unsafe_bucket_ids_are_refused(storage: Storage, bucket: str) -> None:
    with pytest.raises(InvalidPath):
        storage.read(bucket, "a")


@pytest.mark.parametrize("prefix", ["logs", "../", "/logs/", "a//"])
def test_listing_prefixes_must_be_folders(storage: Storage, prefix: str) -> None:
    with pytest.raises(InvalidPath):
        storage.list(MAIN, prefix)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_page_size_is_bounded(storage: Storage, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        storage.list(MAIN, limit=limit)
