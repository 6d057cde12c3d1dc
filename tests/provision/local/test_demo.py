"""The demo: scripted agents that follow the seeded onboarding README, against a real `collab up` backend.

Every process a test starts is stopped by its PID in a `finally`. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import httpx
import pytest
from local_harness import Proc, alive, stop

from provision.cli import main
from provision.demo.coordination import read_calls
from provision.demo.guide import Call, GuideError, JobCalls, read_guide
from provision.demo.run import job_processes
from provision.local.target import local_target, local_tokens

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
    assert guide.post == Call("POST", "/v1/messages", ("agent_id", "body"), ("channel", "thread", "refs", "direction"))
    coordination = read_calls(readme)  # the demo's directions and credit step reads these
    assert coordination.open_direction == Call("POST", "/v1/directions", ("agent_id", "name"), ("description",))
    assert coordination.agent_credit.url(agent="ben") == "/v1/credit/ben"
    assert guide.promote == Call("POST", "/v1/messages/promote", ("agent_id", "path"))
    assert guide.open_channel == Call("POST", "/v1/channels", ("agent_id", "name", "description"))
    assert guide.result == Call("POST", "/v1/results", ("agent_id", "path"))
    assert list(guide.result_fields) == ["tps", "ppl", "method", "track", "status", "parents"]
    assert guide.result_fields["track"] == "lossless"
    assert guide.digest.url(agent_id="ben") == "/v1/digest/ben"
    assert guide.broadcast == Call("POST", "/v1/broadcasts", ("body",), ("channel",))
    assert guide.jobs is None  # asked for only when the collab runs jobs


def test_the_readme_guides_a_job_when_the_collab_runs_jobs(readme: str) -> None:
    jobs = read_guide(readme, required_result_fields=REQUIRED, jobs=True).jobs
    assert jobs == JobCalls(
        launch=Call("POST", "/v1/jobs", ("agent_id", "submission"), ("track",)),
        status=Call("GET", "/v1/jobs/{id}"),
        logs=Call("GET", "/v1/jobs/{id}/logs"),
        listed=Call("GET", "/v1/jobs"),
    )
    assert jobs.status.url(id="job-1-2") == "/v1/jobs/job-1-2"
    without = readme.replace("| `POST /v1/jobs` `{agent_id, submission, track?}` |", "| launch |")
    assert without != readme, "the edit did not apply: the README's wording changed"
    assert read_guide(without, required_result_fields=REQUIRED).jobs is None  # a collab without jobs needs none
    with pytest.raises(GuideError, match="API reference does not list POST /v1/jobs"):
        read_guide(without, required_result_fields=REQUIRED, jobs=True)
    renamed = readme.replace("`{agent_id, submission, track?}`", "`{agent_id, folder, track?}`")
    with pytest.raises(GuideError, match=r"says POST /v1/jobs \{agent_id, folder, track\?\}, without submission"):
        read_guide(renamed, required_result_fields=REQUIRED, jobs=True)


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
        (lambda t: t.replace('collab bucket create "', 'collab bucket make "'),
         "shows no command that creates the scratch bucket"),
        (lambda t: t.replace("\\\"path\\\": \\\"results/result.md\\\"", "\\\"file\\\": \\\"results/result.md\\\""),
         "no curl example of a result"),
        (lambda t: t.replace("/v1/messages/promote\" -H", "/v1/messages/copy\" -H"),
         "API reference does not list POST /v1/messages/copy"),
        (lambda t: t.replace("\nppl: 2.299\n", "\n"), "result example lacks ppl, which the backend requires"),
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


def test_demo_runs_and_leaves_no_process(collab: Path, port: int, dashboard_port: int) -> None:
    """The whole script, its benchmark job included, against a real backend that runs the job as a subprocess.

    The dashboard runs beside it, and shows what the agents did.
    """
    demo = Proc("provision.demo", str(collab), "--seconds", "30", "--port", str(port), "--pause", "0",
                "--dashboard-port", str(dashboard_port))  # fmt: skip
    backend_pid = dashboard_pid = None
    try:
        started = demo.wait_for(r"Backend up at \S+ \(pid (\d+)\)\.\nDashboard up at (\S+) \(pid (\d+)\)\.")
        backend_pid, web, dashboard_pid = int(started.group(1)), started.group(2), int(started.group(3))
        assert web == f"http://127.0.0.1:{dashboard_port}"
        demo.wait_for(r"registered cleo")  # the agents are registered: the dashboard lists them
        agents = httpx.get(f"{web}/agents", timeout=10).text
        assert all(f'href="/agents/{name}"' in agents for name in ("ada", "ben", "cleo")), agents
        code = demo.finish(timeout=120)
    finally:
        stop(demo, dashboard_pid, backend_pid)
    out = demo.output
    assert code == 0, out
    for seen in (
        f"The agents follow the onboarding README (README.md of the central bucket {CENTRAL}):",
        "register: write collab-handshake.txt into my-collab/gemma-collab-<agent_id>, then POST /v1/agents {agent_id}",
        "the file's frontmatter with tps, ppl, method, track, status, parents",
        "registered ada (user participant-1",
        "(notifies @ben, @cleo)",
        "opened channel #speculative-decoding",
        "builds on r",
        "(negative: worse than its parent)",
        "job: POST /v1/jobs {agent_id, submission, track?}, then GET /v1/jobs/{id} until it ends",
        "leaderboard (Tokens/s, maximize",
        "excluded: 5 proxy result(s) (proxy: a stand-in's figures (a CPU engine, a fake) never rank)",
        "Proxies never rank: this is no ranking",
        "digest of ben: 3 inbox message(s)",  # two mentions, and its result's verdict
        f"  dashboard    {web}/\n",
        f"Stopped the dashboard (pid {dashboard_pid}, exit 0); no process left.\n"
        f"Stopped the backend (pid {backend_pid}, exit 0); no process left.",
    ):
        assert seen in out, f"{seen!r} missing from:\n{out}"
    # The job: ben copies the first example into its bucket, launches it, follows it to its end, files it.
    job = re.search(r"^job ben:\n((?:  .*\n)+)", out, re.MULTILINE)
    assert job is not None, out
    step = job.group(1)
    assert "ben copied challenge_gemma/examples/valid/bf16_baseline/ to jobs/bf16_baseline/ of " in step
    launched = re.search(r'POST /v1/jobs \{"agent_id": "ben", "submission": "jobs/bf16_baseline", "track": '
                         r'"lossless"\} -> (job-\d+-\d+): queued', step)  # fmt: skip
    assert launched is not None, step
    job_id = launched.group(1)
    assert f"{job_id} ended succeeded (exit 0), charged to ben's quota: summary written, valid" in step
    assert re.search(r"summary: tps [\d.]+, ppl [\d.]+; valid; proxy \(a CPU stand-in's numbers: never ranked\)", step)
    assert re.search(rf"its log, the last \d+ line\(s\) \(GET /v1/jobs/{job_id}/logs\):", step)
    assert "|   note: revision: model google/gemma-4-E4B-it is not pinned (no revision)" in step  # the summary's note
    assert re.search(r"\| valid: [\d.]+ tokens/s, ppl [\d.]+ \(proxy: never ranks\)", step)  # the harness's own line
    assert "ben's job quota: 1 of 5 used in 24 h" in step
    filed = re.search(rf"result (r\S+) by ben: tps [\d.]+ \(proxy\), from {job_id}; builds on (r\S+), the local", step)
    assert filed is not None, step
    ben = collab / ".collab" / "hub" / "buckets" / "my-collab" / "gemma-collab-ben"
    assert json.loads((ben / "jobs" / "bf16_baseline" / "submission.json").read_text(encoding="utf-8"))
    result = (ben / "results" / "job-bf16_baseline.md").read_text(encoding="utf-8")
    assert f"job: {job_id}\nproxy: true\n" in result and "they are not a claim" in result
    # The run request: ada publishes one (the second example, which builds on her first result), cleo finds it
    # in her digest, claims it and launches it on her own quota (the job runs ada's folder); the result cleo
    # records names ada as originator, cleo as sponsor, and ada's first result as its parent.
    sponsored = re.search(r"^run request:\n((?:  .*\n)+)", out, re.MULTILINE)
    assert sponsored is not None, out
    told = sponsored.group(1)
    published = re.search(r"ada published run request (rr-\d+-\d+) for requests/int4_qat/ of "
                          r"my-collab/gemma-collab-ada: int4_qat, as a job \(open\)", told)  # fmt: skip
    assert published is not None, told
    rid = published.group(1)
    assert f"cleo's digest lists 1 open run request(s), {rid} among them: yes" in told
    assert f"cleo claimed {rid}: lease held by cleo until " in told
    ran = re.search(rf"cleo launched {rid} as (job-\d+-\d+): originator ada, sponsor cleo, running "
                    r"my-collab/gemma-collab-ada/requests/int4_qat\n", told)  # fmt: skip
    assert ran is not None, told
    assert f"{ran.group(1)} ended succeeded; charged to cleo (1 of 5 used), not to ada (0 of 5 used)" in told
    recorded = re.search(rf"result (r\S+) by cleo: tps [\d.]+ \(proxy\), from {ran.group(1)}; originator ada, "
                         r"sponsor cleo; builds on (r\S+) \(ada's bf16_baseline\)", told)  # fmt: skip
    assert recorded is not None, told
    sponsored_id = recorded.group(1)
    assert f"run request {rid} is now done" in told
    # The verification: a forged claim on the job refused, then the job's result re-run (a rehearsal on the
    # stand-in: the result is a proxy), ruled on, announced to its owner; the badge says what it is worth.
    verified = re.search(r"^verification:\n((?:  .*\n)+)", out, re.MULTILINE)
    assert verified is not None, out
    step, rid = verified.group(1), filed.group(1)
    assert re.search(rf"ben files {job_id}'s result again, typing tps [\d.]+ \(10 times what the job measured\)", step)
    assert re.search(rf"refused: POST /v1/results -> FIGURE_MISMATCH: `tps` is [\d.]+ in the result but job "
                     rf"{job_id} measured [\d.]+", step), step  # fmt: skip
    assert re.search(rf"the verifier re-ran {rid}'s submission and ruled after [\d.]+ s: valid \(verifier:rehearsal\)",
                     step), step  # fmt: skip
    assert re.search(r"rehearsal: the CPU stand-in's re-run, not a measurement; guard `quality_gate` not applied: "
                     r"[\d.]+ \(min None, max 0\.0\), a stand-in's figure; the re-run measured ([\d.]+) on the "
                     r"private set, the result says ([\d.]+): within the [\d.]+ allowed", step), step  # fmt: skip
    figures = re.search(r"tps: public ([\d.]+) \(proxy\), private ([\d.]+)", step)
    # the stand-in private set (seeded into the audit bucket by apply) holds other prompts: another figure
    assert figures is not None and figures.group(1) != figures.group(2), step
    # the gap monitor's reading: flagged exactly when the private figure is worse by more than the noise
    gap = re.search(r"gap monitor: public minus private (-?[\d.e-]+), noise ([\d.e-]+): (flagged|not flagged)", step)
    assert gap is not None, step
    assert abs(float(gap.group(1)) - (float(figures.group(1)) - float(figures.group(2)))) < 0.01, step
    assert (gap.group(3) == "flagged") == (float(gap.group(1)) > float(gap.group(2))), step
    badge = "badge: verified (rehearsal: a stand-in's re-run, never a real verification); a proxy result, never ranked"
    assert badge in step
    assert re.search(rf"\[results\] _system: Result {rid} by @ben is now \*\*valid\*\* \(verifier:rehearsal\)", step)
    # The proxies differ by submission, the job's equals the local run of its submission; ties share a
    # place within the spec's noise margin; lineage is a chain.
    rows = re.findall(r"^ +(=?\d+) +(\w+) +([\d.]+) +(r\S+) +(\S+) +(\S.*)$", out, re.MULTILINE)
    by_label = {row[5]: row for row in rows}
    assert set(by_label) >= {"bf16_baseline", "int4_qat", "int4_qat_mtp", "int4_qat_mtp + async scheduling"}
    assert by_label["bf16_baseline (job)"][3] == filed.group(1)
    assert by_label["bf16_baseline (job)"][4] == filed.group(2) == by_label["bf16_baseline"][3]
    scores = [float(row[2]) for row in rows if row[5] != "bf16_baseline (job)"]
    assert len(set(scores)) == len(scores) and scores == sorted(scores, reverse=True)
    assert by_label["int4_qat_mtp + async scheduling"][0] == by_label["int4_qat_mtp"][0] == "=1"
    assert [row[0] for row in rows[2:]] == ["3", "=4", "=4"]
    assert re.search(r"tie: cleo's r\S+ is 0\.\d+% from ada's r\S+, inside the noise margin \(1\.41%\)", out)
    assert re.search(r"tie: ben's r\S+ is 0\.00% from ada's r\S+, inside the noise margin", out)
    lineage = re.search(r"lineage: (.+)$", out, re.MULTILINE)
    assert lineage is not None and lineage.group(1).count(" -> ") == 3, out
    assert re.search(r" - +cleo +[\d.]+ +r\S+ +r\S+ +int4_qat_mtp \+ eager mode \(negative\)", out)
    # cleo flags a leaf result of another agent; the organizers rule it out, announce it, and it is invalid.
    flagged = re.search(r"^  cleo flags (r\S+) \((\w+)'s .+\): (flag-\S+) \(open\)$", out, re.MULTILINE)
    assert flagged is not None, out
    result_id, owner, flag_id = flagged.groups()
    ruled = re.search(rf"^  the organizers rule (ruling-\S+): accepted, covers {result_id}; in force: True$", out,
                      re.MULTILINE)  # fmt: skip
    assert ruled is not None, out
    ruling_id = ruled.group(1)
    assert f"  [rulings] human-organizer: Ruling {ruling_id}: **accepted**. (notifies @{owner}, @cleo)" in out
    assert f"  result {result_id}: verdict invalid by ruling:{ruling_id}" in out
    assert flag_id.startswith("flag-")
    # The official board ranks only the replayed example claim: the proxies never rank.
    assert re.search(r"^ +1 +eve +247\.1 \(pending verification\)$", out, re.MULTILINE)
    # Directions and credit: cleo opens one and posts in it; the map, ben's nudge and the ledger, as the API answers.
    assert "cleo opened direction vocab-pruning: Pruning the output vocabulary" in out
    assert "[general] cleo (direction vocab-pruning): Looking at vocabulary pruning" in out
    assert "  map of directions (GET /v1/directions):" in out
    mapped = re.findall(r"^    (\S+) +(\d+) result\(s\), (\d+) post\(s\), (.+?); agents: (.+?); open run requests: 0;",
                        out, re.MULTILINE)  # fmt: skip
    assert mapped == [("vocab-pruning", "0", "1", "no ranked figure", "cleo")], out  # a post, no result yet
    assert "ben's digest nudges toward: vocab-pruning (0 result(s))" in out
    # every figure of the demo is a CPU stand-in's proxy or an unverified claim: nobody has earned credit
    assert "  credit ledger (GET /v1/credit; tokens/s):\n    no credit yet: a result earns only when" in out
    assert "ben's credit: 0 (own 0, from its lineage 0; GET /v1/credit/{agent})" in out
    # the proxy ledger: the same rule over the stand-in's figures, labelled as a rehearsal that never counts;
    # the sponsored run's improvement over ada's first result goes 1/4 to ada as its parent's author, and of
    # the rest 3/4 to ada as originator and 1/4 to cleo as sponsor
    assert re.search(r"^  proxy ledger \(GET /v1/credit\?view=proxy; tokens/s\): rehearsal: .+ it never counts",
                     out, re.MULTILINE)  # fmt: skip
    shares = re.search(rf"the sponsored run's result {sponsored_id} \(run by cleo for ada\) in the proxy ledger: "
                       rf"ada ([\d.]+) as originator, ada ([\d.]+) as author of {recorded.group(2)}, "
                       r"cleo ([\d.]+) as sponsor", out)  # fmt: skip
    assert shares is not None, out
    originator, author, sponsor = (float(x) for x in shares.groups())
    assert sponsor > 0 and math.isclose(originator, 3 * sponsor, rel_tol=1e-4)
    assert math.isclose(author, 4 * sponsor / 3, rel_tol=1e-4)  # figures are printed to 6 digits
    assert "FAILED" not in out
    assert not alive(backend_pid) and not alive(dashboard_pid)
    assert job_processes(collab / ".collab" / "jobs") == []
    for token in local_tokens(local_target(collab)).values():
        assert token not in out


def test_a_readme_without_a_step_fails_the_demo_loudly(
    collab: Path, port: int, dashboard_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """An organizer's edit is kept by apply, so the demo reads it: a README that lost a step fails the demo."""
    assert main(["apply", "--target", "local", str(collab)]) == 0
    capsys.readouterr()
    readme = collab / ".collab" / "hub" / "buckets" / CENTRAL / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("## 1. Register your agent", "## 1. Your agent"), encoding="utf-8")
    demo = Proc("provision.demo", str(collab), "--seconds", "30", "--port", str(port), "--pause", "0",
                "--dashboard-port", str(dashboard_port))  # fmt: skip
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
