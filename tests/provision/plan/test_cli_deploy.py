"""`collab plan | apply | status` end to end on the Hub fake: output, exit codes, and no token anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from plan_harness import ADMIN_ORG, ORG, TOKEN

from collab_testing.hub import FakeHub
from provision.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert TOKEN not in output, "the token leaked into the output"
    return code, output


def test_plan_apply_plan_status(collab: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "plan", str(collab))
    assert code == 2
    assert re.search(r"\+ create +bucket\.central +my-collab/gemma-collab-main-bucket\n", out)
    assert "secret HF_TOKEN: absent -> set" in out
    # 2 buckets, 2 Spaces (backend, dashboard), 3 seeds; the jobs check is unchanged (it never changes anything)
    assert "7 to create, 0 to update, 1 unchanged. Run `collab apply`" in out
    assert "token from HF_TOKEN" in out

    code, out = run(capsys, "apply", "--poll-interval", "0", str(collab))
    assert code == 0, out
    assert "space.backend (my-collab/gemma-collab-backend): create" in out and "stage: RUNNING" in out

    code, out = run(capsys, "plan", str(collab))
    assert code == 0 and "No changes: in sync: 2 bucket(s) and 2 Space(s) match challenge.yaml" in out
    assert "= no-op" in out

    code, out = run(capsys, "status", str(collab))
    assert code == 0 and "Healthy and in sync." in out and "RUNNING, cpu-basic; in sync" in out


def test_plan_json(collab: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "plan", "--json", str(collab))
    document = json.loads(out)
    assert code == 2 and document["format_version"] == 1 and document["in_sync"] is False
    assert document["summary"] == {"create": 7, "update": 0, "no-op": 1, "kept": 0}
    backend = next(a for a in document["actions"] if a["address"] == "space.backend")
    assert {"field": "secret HF_TOKEN", "before": "absent", "after": "set"} in backend["changes"]


def test_status_json_shows_drift(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "apply", "--poll-interval", "0", str(collab))
    hub.fail_build(f"{ORG}/gemma-collab-backend")
    hub.restart_space(f"{ORG}/gemma-collab-backend", token=TOKEN)
    hub.get_space_runtime(f"{ORG}/gemma-collab-backend", token=TOKEN)
    code, out = run(capsys, "status", "--json", str(collab))
    document = json.loads(out)
    assert code == 2 and document["healthy"] is False
    assert document["drift"]["space.backend"] == ["restart"]
    assert document["observed"]["spaces"]["backend"]["secrets"] == ["HF_TOKEN"]


def test_missing_admin_role_blocks_with_the_fix(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.users[TOKEN].orgs[ADMIN_ORG] = "write"
    code, out = run(capsys, "plan", str(collab))
    assert code == 1
    assert f"! blocked  org.{ADMIN_ORG}: organizer has role 'write' in {ADMIN_ORG}; admin is required" in out
    assert f"https://huggingface.co/organizations/{ADMIN_ORG}/members" in out
    code, out = run(capsys, "apply", "--poll-interval", "0", str(collab))
    assert code == 1 and not hub.buckets and not hub.spaces


@pytest.mark.parametrize("status", [401, 403, 500])
def test_errors_exit_1_with_a_hint_and_no_traceback(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    hub.fail("bucket_info", status)
    code, out = run(capsys, "plan", str(collab))
    assert code == 1 and f"HTTP {status}" in out and "hint:" in out and "Traceback" not in out


def test_a_refused_token(
    collab: Path, monkeypatch: pytest.MonkeyPatch, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("provision.hub.client.connect", lambda: hub)
    monkeypatch.setenv("HF_TOKEN", TOKEN + "x")
    code, out = run(capsys, "plan", str(collab))
    assert code == 1 and "refused the token (HF_TOKEN): HTTP 401" in out


def test_token_from_dotenv_and_no_token_at_all(
    collab: Path, monkeypatch: pytest.MonkeyPatch, hub: FakeHub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr("provision.hub.client.connect", lambda: hub)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    code, out = run(capsys, "plan", str(collab))
    assert code == 1 and "no Hugging Face token found" in out and "hf auth login" in out
    (collab / ".env").write_text(f'# organizers only\nexport HF_TOKEN="{TOKEN}"\n', encoding="utf-8")
    code, out = run(capsys, "plan", str(collab))
    assert code == 2 and "token from .env in the collab" in out


def test_the_token_is_written_into_no_file_of_the_collab(
    collab: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "apply", "--poll-interval", "0", str(collab))
    for path in collab.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "the verification index is not JSON"),
        (b"[1, 2]", "is not a JSON object of result ids"),
        (b'{"r1": {"verdict": "maybe"}, "r2": "valid"}', "1 entry(ies) of the verification index name no verdict"),
    ],
    ids=["not-json", "not-an-object", "no-verdict"],
)
def test_status_reports_a_malformed_verification_index(
    collab: Path, env: dict[str, str], hub: FakeHub, capsys: pytest.CaptureFixture[str], content: bytes, words: str
) -> None:
    run(capsys, "apply", "--poll-interval", "0", str(collab))
    central = f"{ORG}/gemma-collab-main-bucket"
    hub.batch_bucket_files(central, add=[(content, "results/verification_status.json")], token=TOKEN)
    code, out = run(capsys, "status", str(collab))
    assert code == 2, out
    [line] = [x for x in out.splitlines() if "seed.verification_index" in x]
    assert "malformed: " in line and words in line, line
    assert "The verification index needs a fix by hand (results/verification_status.json" in out
    code, out = run(capsys, "status", "--json", str(collab))
    document = json.loads(out)
    assert code == 2 and document["healthy"] is False and words in document["observed"]["seed"]["index_problem"]
    hub.batch_bucket_files(central, add=[(b'{"r2": "valid"}', "results/verification_status.json")], token=TOKEN)
    code, out = run(capsys, "status", str(collab))
    assert code == 0 and "Healthy and in sync." in out, out
