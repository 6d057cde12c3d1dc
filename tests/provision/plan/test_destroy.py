"""`collab destroy`: only with --confirm, only what this collab marked, Spaces before buckets."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_harness import TOKEN

from collab_testing.hub import FakeHub
from provision.cli import main

CENTRAL, AUDIT = "my-collab/gemma-collab-main-bucket", "my-collab-admin/gemma-collab-audit-bucket"
SPACE = "my-collab/gemma-collab-backend"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert TOKEN not in output
    return code, output


@pytest.fixture
def applied(collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> Path:
    assert run(capsys, "apply", "--poll-interval", "0", str(collab))[0] == 0
    assert {CENTRAL, AUDIT} <= set(hub.buckets) and SPACE in hub.spaces
    return collab


def test_nothing_is_deleted_without_the_confirmation(
    applied: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in ([], ["--confirm", "my-collab/other"]):
        code, out = run(capsys, "destroy", *extra, str(applied))
        assert code == 1 and "Nothing deleted: confirm with `collab destroy --confirm my-collab/gemma-collab`" in out
        assert f"- delete  space   {SPACE}" in out and f"- delete  bucket  {CENTRAL}" in out
    assert {CENTRAL, AUDIT} <= set(hub.buckets) and SPACE in hub.spaces
    assert hub.calls["delete_repo"] == hub.calls["delete_bucket"] == 0


def test_destroy_deletes_the_marked_resources_spaces_first(
    applied: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = "my-collab/gemma-collab-speedy"
    hub.create_bucket(scratch, token=TOKEN)  # an agent's bucket: never the collab's to delete
    code, out = run(capsys, "destroy", "--confirm", "my-collab/gemma-collab", str(applied))
    assert code == 0, out
    assert out.index(f"deleting space {SPACE}") < out.index(f"deleting bucket {CENTRAL}")
    assert SPACE not in hub.spaces and CENTRAL not in hub.buckets and AUDIT not in hub.buckets
    assert scratch in hub.buckets
    code, out = run(capsys, "destroy", "--confirm", "my-collab/gemma-collab", str(applied))
    assert code == 0 and "Nothing to delete" in out


def test_unmarked_resources_are_kept(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.create_bucket(CENTRAL, token=TOKEN)  # made by hand, no mark
    hub.create_repo(SPACE, repo_type="space", space_sdk="docker", token=TOKEN)
    code, out = run(capsys, "destroy", "--confirm", "my-collab/gemma-collab", str(collab))
    assert code == 0 and "Nothing to delete" in out
    assert "keep" in out and "not marked by this collab: left alone" in out
    assert CENTRAL in hub.buckets and SPACE in hub.spaces


def test_a_refused_deletion_says_how_to_finish(applied: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.fail("delete_bucket", 503)
    code, out = run(capsys, "destroy", "--confirm", "my-collab/gemma-collab", str(applied))
    assert code == 1 and "run `collab destroy` again to finish" in out
    assert SPACE not in hub.spaces  # deleted before the failure, and stays deleted
    assert run(capsys, "destroy", "--confirm", "my-collab/gemma-collab", str(applied))[0] == 0
    assert CENTRAL not in hub.buckets and AUDIT not in hub.buckets
