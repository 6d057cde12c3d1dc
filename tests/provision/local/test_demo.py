"""The demo: scripted agents that follow the seeded onboarding README, against a real `collab up` backend.

Every process a test starts is stopped by its PID in a `finally`. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from local_harness import Proc, alive, stop

from provision.cli import main
from provision.demo_guide import Call, GuideError, read_guide
from provision.local import local_target, local_tokens

CENTRAL = "my-collab/gemma-collab-main-bucket"
REQUIRED = ("tps", "ppl", "method", "track")


@pytest.fixture
def readme(collab: Path) -> str:
    """The onboarding README the collab's central bucket is seeded with."""
    seed = local_target(collab).desired.seed
    assert seed is not None
    return seed.readme


def test_the_generated_readme_guides_every_step(readme: str) -> None:
    guide = read_guide(readme, required_result_fields=REQUIRED)
    assert guide.bucket_of("ada") == "my-collab/gemma-collab-ada"
    assert guide.handshake_file == "collab-handshake.txt"
    assert guide.register == Call("POST", "/v1/agents", ("agent_id",))
    assert guide.post == Call("POST", "/v1/messages", ("agent_id", "body"), ("channel", "thread", "refs"))
    assert guide.promote == Call("POST", "/v1/messages/promote", ("agent_id", "path"))
    assert guide.open_channel == Call("POST", "/v1/channels", ("agent_id", "name", "description"))
    assert guide.result == Call("POST", "/v1/results", ("agent_id", "path"))
    assert list(guide.result_fields) == ["tps", "ppl", "method", "track", "status", "parents", "fingerprint"]
    assert guide.result_fields["track"] == "lossless"
    assert guide.digest.url(agent_id="ben") == "/v1/digest/ben"
    assert guide.broadcast == Call("POST", "/v1/broadcasts", ("body",), ("channel",))


def test_a_call_refuses_what_the_readme_does_not_document() -> None:
    call = Call("POST", "/v1/messages", ("agent_id", "body"), ("channel",))
    assert call.body(agent_id="a", body="hi", channel=None) == {"agent_id": "a", "body": "hi"}
    with pytest.raises(GuideError, match="asks for body, which the demo cannot fill"):
        call.body(agent_id="a")
    with pytest.raises(GuideError, match="does not document thread"):
        call.body(agent_id="a", body="hi", thread="m1")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: re.sub(r'curl -sS -X POST "\$COLLAB_API/v1/agents".*?\}"\n', "", t, flags=re.DOTALL),
         "no curl example of registration"),
        (lambda t: t.replace('hf buckets create "', 'hf buckets make "'),
         "shows no command that creates the scratch bucket"),
        (lambda t: t.replace("\\\"path\\\": \\\"results/result.md\\\"", "\\\"file\\\": \\\"results/result.md\\\""),
         "no curl example of a result"),
        (lambda t: t.replace("/v1/messages/promote\" -H", "/v1/messages/copy\" -H"),
         "API reference does not list POST /v1/messages/copy"),
        (lambda t: t.replace("\nppl: <number>\n", "\n"), "result example lacks ppl, which the backend requires"),
        (lambda t: t.replace("## API reference", "## Endpoints"), "no section on the API reference"),
        (lambda t: t.replace("`POST /v1/channels` (`{agent_id, name, description}`)", "`POST /v1/channels`"),
         "the README says POST /v1/channels for opening a channel, but its API reference says"),
    ],
    ids=["no-register-curl", "no-bucket-command", "result-field-renamed", "unlisted-endpoint", "missing-field",
         "no-reference", "contradiction"],
)  # fmt: skip
def test_a_readme_that_lacks_a_step_is_named(readme: str, edit: object, message: str) -> None:
    changed = edit(readme)  # type: ignore[operator]
    assert changed != readme, "the edit did not apply: the README's wording changed"
    with pytest.raises(GuideError) as refused:
        read_guide(changed, required_result_fields=REQUIRED)
    assert message in str(refused.value)


def test_demo_runs_and_leaves_no_process(collab: Path, port: int) -> None:
    demo = Proc("provision.demo", str(collab), "--seconds", "8", "--port", str(port), "--pause", "0")
    backend_pid = None
    try:
        backend_pid = int(demo.wait_for(r"Backend up at \S+ \(pid (\d+)\)").group(1))
        code = demo.finish(timeout=120)
    finally:
        stop(demo, backend_pid)
    out = demo.output
    assert code == 0, out
    for seen in (
        f"The agents follow the onboarding README (README.md of the central bucket {CENTRAL}):",
        "register: write collab-handshake.txt into my-collab/gemma-collab-<agent_id>, then POST /v1/agents {agent_id}",
        "the file's frontmatter with tps, ppl, method, track, status, parents, fingerprint",
        "registered ada (user participant-1",
        "(notifies @ben, @cleo)",
        "opened channel #speculative-decoding",
        "builds on r",
        "(negative: worse than its parent)",
        "leaderboard (Tokens/s, maximize",
        "excluded: 4 proxy result(s) (ppl outside its guardrail)",
        "Proxies never rank: this is no ranking",
        "digest of ben: 2 inbox message(s)",
        f"Stopped the backend (pid {backend_pid}, exit 0); no process left.",
    ):
        assert seen in out, f"{seen!r} missing from:\n{out}"
    # The proxies differ by submission; two of them tie within the spec's noise margin; lineage is a chain.
    rows = re.findall(r"^ +(=?\d+) +(\w+) +([\d.]+) +(r\S+) +(\S+) +(\S.*)$", out, re.MULTILINE)
    by_label = {row[5]: row for row in rows}
    assert set(by_label) >= {"bf16_baseline", "int4_qat", "int4_qat_mtp", "int4_qat_mtp + async scheduling"}
    scores = [float(row[2]) for row in rows]
    assert len(set(scores)) == len(scores) and scores == sorted(scores, reverse=True)
    assert by_label["int4_qat_mtp + async scheduling"][0] == by_label["int4_qat_mtp"][0] == "=1"
    assert [row[0] for row in rows[2:]] == ["3", "4"]
    assert re.search(r"tie: cleo's r\S+ is 0\.\d+% from ada's r\S+, inside the noise margin \(1\.41%\)", out)
    lineage = re.search(r"lineage: (.+)$", out, re.MULTILINE)
    assert lineage is not None and lineage.group(1).count(" -> ") == 3, out
    assert re.search(r" - +cleo +[\d.]+ +r\S+ +r\S+ +int4_qat_mtp \+ eager mode \(negative\)", out)
    # The official board ranks only the replayed example claim: the proxies never rank.
    assert re.search(r"^ +1 +eve +247\.1 \(pending verification\)$", out, re.MULTILINE)
    assert "FAILED" not in out
    assert not alive(backend_pid)
    for token in local_tokens(local_target(collab)).values():
        assert token not in out


def test_a_readme_without_a_step_fails_the_demo_loudly(
    collab: Path, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """An organizer's edit is kept by apply, so the demo reads it: a README that lost a step fails the demo."""
    assert main(["apply", "--target", "local", str(collab)]) == 0
    capsys.readouterr()
    readme = collab / ".collab" / "hub" / "buckets" / CENTRAL / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("## 1. Register your agent", "## 1. Your agent"), encoding="utf-8")
    demo = Proc("provision.demo", str(collab), "--seconds", "30", "--port", str(port), "--pause", "0")
    backend_pid = None
    try:
        backend_pid = int(demo.wait_for(r"Backend up at \S+ \(pid (\d+)\)").group(1))
        code = demo.finish(timeout=60)
    finally:
        stop(demo, backend_pid)
    out = demo.output
    assert code == 1, out
    assert "demo: the onboarding README does not guide the agents: the README has no section on registration" in out
    assert "registered ada" not in out
    assert f"Stopped the backend (pid {backend_pid}, exit 0); no process left." in out
    assert not alive(backend_pid)
