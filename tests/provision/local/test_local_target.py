"""`collab plan | apply --target local`: the folder hub and the identity file, idempotent, no token shown."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from local_harness import run_cli

from provision.local.target import IDENTITY_FILE, local_target, local_tokens

CENTRAL = "my-collab/gemma-collab-main-bucket"
AUDIT = "my-collab-admin/gemma-collab-audit-bucket"


def run(capsys: pytest.CaptureFixture[str], collab: Path, *argv: str) -> tuple[int, str]:
    return run_cli(capsys, collab, *argv)


def test_plan_apply_plan(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, collab, "plan")
    assert code == 2, out
    assert re.search(rf"\+ create  bucket\.central +{CENTRAL}", out) and re.search(
        rf"\+ create  bucket\.audit +{AUDIT}", out
    )
    assert re.search(r"\+ create  identities +\.collab/identities\.json", out)
    assert re.search(rf"\+ create  seed\.readme +{CENTRAL}/README\.md", out)
    assert "user organizer: admin of my-collab, admin of my-collab-admin" in out
    assert re.search(rf"\+ create  private_set +{AUDIT}/eval_dataset/\n +files: 6 file\(s\) of challenge_gemma/"
                     r"private_sample/", out), out  # fmt: skip
    assert "7 to create, 0 to update, 0 unchanged. Run `collab apply --target local`" in out
    assert not (collab / ".collab").exists(), "plan wrote something"

    code, out = run(capsys, collab, "apply")
    assert code == 0, out
    assert "a fresh plan shows no changes." in out
    hub = collab / ".collab" / "hub"
    assert (hub / "buckets" / CENTRAL / ".collab" / "deployment.json").is_file()
    assert json.loads((hub / "bucket-settings" / f"{AUDIT}.json").read_text()) == {"private": True}

    code, out = run(capsys, collab, "plan")
    assert code == 0, out
    assert "No changes: in sync: 2 bucket folder(s), the central bucket's README" in out

    code, out = run(capsys, collab, "apply")
    assert code == 0 and "Applying" not in out


def test_the_local_central_bucket_is_seeded_like_the_hubs(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, collab, "apply")[0] == 0
    central = collab / ".collab" / "hub" / "buckets" / CENTRAL
    readme = (central / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Gemma 4 E4B fast decode")
    # The README speaks to its target: the local backend, `collab bucket` on the local folders.
    assert 'collab bucket create "my-collab/gemma-collab-$AGENT_ID"' in readme
    assert "hf buckets create" not in readme and "hf buckets cp" not in readme and "hf buckets sync" not in readme
    assert "export COLLAB_API=http://127.0.0.1:8000\n" in readme and f"export COLLAB_DIR={collab}\n" in readme
    assert "huggingface_hub" not in readme and "hf.space" not in readme
    assert (central / "harness" / "schemas" / "gemma-submission.schema.json").is_file()
    assert (central / "harness" / "examples" / "valid" / "int4_qat_mtp" / "submission.json").is_file()
    assert json.loads((central / "results" / "verification_status.json").read_text(encoding="utf-8")) == {}
    assert (central / "harness" / "run.py").is_file()

    # An organizer edits the README: kept (exit 0, diff shown) until --overwrite-readme.
    (central / "README.md").write_text(readme + "\nOffice hours: Tuesdays.\n", encoding="utf-8")
    code, out = run(capsys, collab, "plan")
    assert code == 0 and "! kept    seed.readme" in out and "-Office hours: Tuesdays." in out
    assert run(capsys, collab, "apply")[0] == 0
    assert "Office hours" in (central / "README.md").read_text(encoding="utf-8")
    code, out = run(capsys, collab, "apply", "--overwrite-readme")
    assert code == 0, out
    assert "Office hours" not in (central / "README.md").read_text(encoding="utf-8")


def test_plan_json(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, collab, "plan", "--json")
    document = json.loads(out)
    assert code == 2 and document["format_version"] == 1 and document["target"] == "local"
    assert document["summary"] == {"create": 7, "update": 0, "no-op": 0, **document["summary"]}
    assert [a["address"] for a in document["actions"]] == [
        "bucket.central", "bucket.audit", "seed.readme", "seed.harness", "seed.verification_index", "private_set",
        "identities",
    ]  # fmt: skip


def test_the_stand_in_private_set_is_seeded_into_the_audit_bucket_and_never_overwritten(
    collab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Local mode only: the type's private sample goes to `verification.private_set` of the audit bucket, once."""
    assert run(capsys, collab, "apply")[0] == 0
    hub = collab / ".collab" / "hub" / "buckets"
    private = hub / AUDIT / "eval_dataset"
    prompts = json.loads((private / "prompts.json").read_text(encoding="utf-8"))
    public = json.loads((hub / CENTRAL / "harness" / "data" / "sample" / "prompts.json").read_text(encoding="utf-8"))
    assert prompts["set"] == "private" and public["set"] == "sample"
    assert not {i["id"] for i in prompts["items"]} & {i["id"] for i in public["items"]}  # other prompts
    assert (private / "baselines" / "fake-v1.json").is_file() and (private / "spot_items.json").is_file()
    # The organizers' own set there is theirs: a changed or replaced file is never overwritten.
    (private / "prompts.json").write_text('{"theirs": true}\n', encoding="utf-8")
    code, out = run(capsys, collab, "plan")
    assert code == 0 and "private_set" in out and "+ create  private_set" not in out, out  # in sync: kept
    assert run(capsys, collab, "apply")[0] == 0
    assert (private / "prompts.json").read_text(encoding="utf-8") == '{"theirs": true}\n'


def test_identity_file_is_private_and_keeps_its_tokens(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, collab, "apply")[0] == 0
    path = collab / IDENTITY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = local_tokens(local_target(collab))
    assert sorted(tokens) == ["organizer", "participant-1", "participant-2", "participant-3", "participant-4"]
    assert len(set(tokens.values())) == 5 and all(len(t) > 30 for t in tokens.values())

    # Drift: a participant removed by hand and the mode loosened; apply restores both, other tokens stay.
    table = json.loads(path.read_text(encoding="utf-8"))
    del table[tokens["participant-2"]]
    path.write_text(json.dumps(table), encoding="utf-8")
    path.chmod(0o644)
    code, out = run(capsys, collab, "plan")
    assert code == 2
    assert "~ update  identities" in out and "user participant-2: contributor of my-collab" in out
    assert "mode: 0o644 -> 0o600" in out
    assert run(capsys, collab, "apply")[0] == 0
    after = local_tokens(local_target(collab))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {u: t for u, t in after.items() if u != "participant-2"} == {
        u: t for u, t in tokens.items() if u != "participant-2"
    }
    assert after["participant-2"] != tokens["participant-2"]
    assert run(capsys, collab, "plan")[0] == 0


def test_a_bucket_of_another_collab_blocks(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mark = collab / ".collab" / "hub" / "buckets" / CENTRAL / ".collab" / "deployment.json"
    mark.parent.mkdir(parents=True)
    mark.write_text(json.dumps({"managed_by": "agent-collab-kit", "collab": "someone/else"}), encoding="utf-8")
    code, out = run(capsys, collab, "plan")
    assert code == 1
    assert f"! blocked  bucket.central: {CENTRAL} belongs to collab someone/else" in out
    code, out = run(capsys, collab, "apply")
    assert code == 1 and "Applying" not in out


def test_an_unreadable_identity_file_is_an_error(collab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (collab / ".collab").mkdir()
    (collab / IDENTITY_FILE).write_text("{not json", encoding="utf-8")
    code, out = run(capsys, collab, "plan")
    assert code == 1 and "is not readable JSON" in out and "delete it and run apply again" in out
