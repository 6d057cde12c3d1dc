"""`collab bucket`: the local folders with the commands of `hf buckets`, writable by their owner only."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from local_harness import run_cli

from provision.cli import main
from provision.local.target import local_target, local_tokens

CENTRAL = "my-collab/gemma-collab-main-bucket"
MINE = "my-collab/gemma-collab-scout"
AUDIT = "my-collab-admin/gemma-collab-audit-bucket"


@pytest.fixture
def applied(collab: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The local target applied; each local user's token."""
    assert run_cli(capsys, collab, "apply")[0] == 0
    return local_tokens(local_target(collab))


def bucket(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, collab: Path, token: str, *argv: str,
    stdin: bytes = b"",
) -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("COLLAB_DIR", str(collab))
    out = io.BytesIO()
    monkeypatch.setattr("provision.cli.bucket.stdio", lambda: (io.BytesIO(stdin), out))
    code = main(["bucket", *argv])
    captured = capsys.readouterr()
    return code, captured.out + out.getvalue().decode(), captured.err


def test_create_cp_sync_ls_act_on_the_folders_as_hf_buckets_on_the_hub(
    collab: Path, applied: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    me = applied["participant-1"]
    folder = collab / ".collab" / "hub" / "buckets" / MINE
    assert bucket(capsys, monkeypatch, collab, me, "whoami")[1].strip() == "participant-1"
    assert bucket(capsys, monkeypatch, collab, me, "create", MINE)[0] == 0 and folder.is_dir()
    assert bucket(capsys, monkeypatch, collab, me, "create", MINE)[0] == 0  # again: it is mine already
    code, _, err = bucket(capsys, monkeypatch, collab, me, "cp", "-", f"hf://buckets/{MINE}/hello.txt", stdin=b"hi")
    assert code == 0, err
    assert (folder / "hello.txt").read_bytes() == b"hi"
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "sub" / "a.md").write_text("a", encoding="utf-8")
    (tmp_path / "sub" / "deep" / "b.md").write_text("bb", encoding="utf-8")
    synced = bucket(capsys, monkeypatch, collab, me, "sync", str(tmp_path / "sub"), f"hf://buckets/{MINE}/jobs/t/")
    assert synced[0] == 0
    assert (folder / "jobs" / "t" / "deep" / "b.md").read_text(encoding="utf-8") == "bb"
    code, out, _ = bucket(capsys, monkeypatch, collab, me, "ls", f"hf://buckets/{MINE}/jobs")
    assert code == 0 and out.split() == ["1", "jobs/t/a.md", "2", "jobs/t/deep/b.md"]
    assert bucket(capsys, monkeypatch, collab, me, "cp", f"hf://buckets/{MINE}/hello.txt", "-")[1] == "hi"
    # Reading the central bucket is allowed: the harness comes down with sync.
    down = tmp_path / "harness"
    assert bucket(capsys, monkeypatch, collab, me, "sync", f"hf://buckets/{CENTRAL}/harness/", str(down))[0] == 0
    assert (down / "run.py").is_file() and not (down / "harness").exists()


def test_it_refuses_to_write_another_users_bucket_and_leaves_the_central_bucket_alone(
    collab: Path, applied: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    me, other = applied["participant-1"], applied["participant-2"]
    hub = collab / ".collab" / "hub" / "buckets"
    central_before = sorted((p.relative_to(hub), p.read_bytes()) for p in (hub / CENTRAL).rglob("*") if p.is_file())
    assert bucket(capsys, monkeypatch, collab, me, "create", MINE)[0] == 0
    (tmp_path / "f.md").write_text("x", encoding="utf-8")
    for argv in (
        ("cp", str(tmp_path / "f.md"), f"hf://buckets/{MINE}/f.md"),
        ("sync", str(tmp_path), f"hf://buckets/{MINE}/"),
        ("create", MINE),
    ):
        code, _, err = bucket(capsys, monkeypatch, collab, other, *argv)
        assert code == 1 and "belongs to participant-1" in err, err
    assert not (hub / MINE / "f.md").exists()
    for argv in (
        ("cp", str(tmp_path / "f.md"), f"hf://buckets/{CENTRAL}/README.md"),
        ("cp", "-", f"hf://buckets/{CENTRAL}/results/forged.md"),
        ("sync", str(tmp_path), f"hf://buckets/{CENTRAL}/harness/"),
    ):
        code, _, err = bucket(capsys, monkeypatch, collab, me, *argv, stdin=b"forged")
        assert code == 1 and "only the backend writes it" in err, err
    central_after = sorted((p.relative_to(hub), p.read_bytes()) for p in (hub / CENTRAL).rglob("*") if p.is_file())
    assert central_after == central_before


@pytest.mark.parametrize(
    ("token", "argv", "message"),
    [
        ("nope", ("whoami",), "HF_TOKEN is not a token of this local collab"),
        (None, ("cp", "-", "hf://buckets/my-collab/x/../../etc"), "not a relative file path"),
        (None, ("cp", "-", "hf://buckets/my-collab/"), "names no bucket"),
        (None, ("ls", "s3://bucket/x"), "is not a bucket address"),
        (None, ("create", "someone-else/mine"), "cannot create a bucket in 'someone-else'"),
        (None, ("cp", f"hf://buckets/{CENTRAL}/missing.md", "-"), "no file 'missing.md'"),
    ],
    ids=["unknown-token", "path-escape", "no-bucket", "not-hf", "foreign-namespace", "missing-file"],
)
def test_bad_input_is_a_clear_error(
    collab: Path, applied: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    token: str | None, argv: tuple[str, ...], message: str,
) -> None:  # fmt: skip
    me = applied["participant-1"]
    if argv[0] == "cp" and "/x/" in argv[2]:
        assert bucket(capsys, monkeypatch, collab, me, "create", "my-collab/x")[0] == 0
    code, _, err = bucket(capsys, monkeypatch, collab, token or me, *argv, stdin=b"data")
    assert code == 1 and message in err and "Traceback" not in err, err


def test_no_participant_reaches_the_private_set(
    collab: Path, applied: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The stand-in private set is in the audit bucket: no participant lists or copies it; the organizer does."""
    audit = f"hf://buckets/{AUDIT}"
    me, organizer = applied["participant-1"], applied["organizer"]
    for argv in (("ls", audit), ("ls", f"{audit}/eval_dataset/"), ("cp", f"{audit}/eval_dataset/prompts.json", "-"),
                 ("sync", f"{audit}/eval_dataset/", str(tmp_path / "got"))):  # fmt: skip
        code, out, err = bucket(capsys, monkeypatch, collab, me, *argv)
        assert code == 1 and "prompts" not in out, (argv, out)
        assert f"bucket {AUDIT} is private: only members of my-collab-admin read it" in err, (argv, err)
    assert not (tmp_path / "got").exists()
    code, out, _ = bucket(capsys, monkeypatch, collab, organizer, "ls", f"{audit}/eval_dataset/")
    assert code == 0 and "eval_dataset/prompts.json" in out.split()
    shown = bucket(capsys, monkeypatch, collab, organizer, "cp", f"{audit}/eval_dataset/prompts.json", "-")[1]
    assert '"set": "private"' in shown
    # Nothing of it is in the central bucket, which everyone reads.
    central = collab / ".collab" / "hub" / "buckets" / CENTRAL
    assert not [p for p in central.rglob("*.json") if '"set": "private"' in p.read_text(encoding="utf-8")]
