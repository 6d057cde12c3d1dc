"""A Space file the Hub keeps in LFS reports its pointer's blob id: the plan still sees it in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plan_harness import ORG, TOKEN

from collab_testing.hub import FakeHub, git_blob_id, in_lfs
from provision.cli import main


def test_a_binary_file_in_a_space_is_in_sync_after_apply(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    logo = bytes(range(256)) * 4  # binary: the Hub keeps it in LFS
    (collab / "backend" / "logo.bin").write_bytes(logo)
    assert main(["apply", "--poll-interval", "0", str(collab)]) == 0, capsys.readouterr().err
    sibling = next(
        s for s in hub.space_info(f"{ORG}/gemma-collab-backend", files_metadata=True, token=TOKEN).siblings or []
        if s.rfilename == "logo.bin"
    )  # fmt: skip
    assert in_lfs(logo) and sibling.blob_id != git_blob_id(logo) and sibling.lfs is not None
    capsys.readouterr()
    assert main(["plan", str(collab)]) == 0, capsys.readouterr().out  # no code drift from the pointer's id
    capsys.readouterr()
    (collab / "backend" / "logo.bin").write_bytes(logo + b"\0")
    assert main(["plan", "--json", str(collab)]) == 2
    backend = next(a for a in json.loads(capsys.readouterr().out)["actions"] if a["address"] == "space.backend")
    assert [c["after"]["upload"] for c in backend["changes"] if c["field"] == "code"] == [["logo.bin"]]
