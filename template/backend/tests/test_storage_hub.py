"""The Hub adapter under failure: only "not found" means absent; everything else is an error."""

from __future__ import annotations

import pytest

from collab_backend.storage import AccessDenied, Add, Delete, NotFound, PartialWrite, Unavailable
from collab_backend.storage.hub import HubStorage
from collab_testing.hub import ADMIN_TOKEN, FakeHub


@pytest.fixture
def hub(fake_hub: FakeHub) -> HubStorage:
    fake_hub.create_bucket("acme/main", token=ADMIN_TOKEN)
    return HubStorage(fake_hub, token=ADMIN_TOKEN)


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AccessDenied), (403, AccessDenied), (500, Unavailable), (503, Unavailable), (429, Unavailable)],
)
@pytest.mark.parametrize("method", ["bucket_info", "list_bucket_tree", "get_bucket_paths_info", "batch_bucket_files"])
def test_failures_are_never_mistaken_for_absence(
    hub: HubStorage, fake_hub: FakeHub, method: str, status: int, error: type[Exception]
) -> None:
    fake_hub.fail(method, status)
    calls = {
        "bucket_info": lambda: hub.bucket_exists("acme/main"),
        "list_bucket_tree": lambda: hub.list("acme/main"),
        "get_bucket_paths_info": lambda: hub.stat("acme/main", ["a"]),
        "batch_bucket_files": lambda: hub.batch("acme/main", [Add("a", b"1")]),
    }
    with pytest.raises(error):
        calls[method]()
    calls[method]()  # the switch fired once; the next call goes through


def test_a_missing_bucket_is_absent_not_an_error(hub: HubStorage) -> None:
    assert hub.bucket_exists("acme/other") is False
    with pytest.raises(NotFound):
        hub.read("acme/other", "x")


def test_a_private_bucket_of_another_org_looks_absent(fake_hub: FakeHub) -> None:
    fake_hub.add_user("rival", "hf_rival", {"rivals": "admin"})
    fake_hub.create_bucket("rivals/secret", private=True, token="hf_rival")
    assert HubStorage(fake_hub, token=ADMIN_TOKEN).bucket_exists("rivals/secret") is False


def test_a_bad_token_is_access_denied(fake_hub: FakeHub, hub: HubStorage) -> None:
    with pytest.raises(AccessDenied):
        HubStorage(fake_hub, token="hf_wrong").stat("acme/main", ["a"])


def test_writing_without_rights_is_access_denied(fake_hub: FakeHub, hub: HubStorage) -> None:
    fake_hub.add_user("agent-owner", "hf_contrib", {"acme": "contributor"})
    with pytest.raises(AccessDenied):
        HubStorage(fake_hub, token="hf_contrib").batch("acme/main", [Add("a", b"1")])


def test_partial_batch_failure_names_the_failed_paths(hub: HubStorage, fake_hub: FakeHub) -> None:
    fake_hub.fail_paths(["b.md"])
    with pytest.raises(PartialWrite) as caught:
        hub.batch("acme/main", [Add("a.md", b"1"), Add("b.md", b"2")])
    assert [p for p, _ in caught.value.failures] == ["b.md"]
    assert set(hub.stat("acme/main", ["a.md", "b.md"])) == {"a.md"}


def test_deleting_an_absent_file_is_not_a_failure_on_the_hub(hub: HubStorage, fake_hub: FakeHub) -> None:
    hub.batch("acme/main", [Add("keep.md", b"1")])
    hub.batch("acme/main", [Delete("gone.md")])  # the Hub itself reports this one as failed
    assert fake_hub.calls["batch_bucket_files"] == 2


def test_a_real_delete_failure_still_surfaces(hub: HubStorage, fake_hub: FakeHub) -> None:
    hub.batch("acme/main", [Add("stuck.md", b"1")])
    fake_hub.fail_paths(["stuck.md"])
    with pytest.raises(PartialWrite):
        hub.batch("acme/main", [Delete("stuck.md")])


def test_listing_skips_folders_and_lexical_neighbours(hub: HubStorage, fake_hub: FakeHub) -> None:
    hub.batch("acme/main", [Add("logs/a", b"1"), Add("logs.json", b"2")])
    assert [f.path for f in hub.list("acme/main", "logs/").items] == ["logs/a"]
    assert fake_hub.calls["list_bucket_tree"] == 1
