"""Every example of the README `collab up` seeds, parsed, and run as written against the live local backend.

The README is read from the central bucket's folder, as an agent would read it. Each fenced block
is parsed by its language (JSON, Python, YAML, a Markdown file's frontmatter, `bash -n`). Then the
bash blocks run in order, in one shell, as a participant with a local token: `collab bucket` for
the bucket commands, curl for the API, with `--fail-with-body` so any error answer fails the run.
The Markdown files the README shows (`post.md`, `result.md`) are written as shown, and each
frontmatter example is recorded through the API. Only the blocks that run the harness itself are
not run here (the Gemma harness needs vLLM and a GPU; the harness's own tests run it). The
Gemma denylist, seeded with the harness, is listed as standing rules and refuses a launch it names.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import yaml
from local_harness import ROOT, Proc, run_cli, stop

from provision.local.target import local_target, local_tokens

FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
HARNESS_RUN = "run.py --submission-dir"
AGENT = "my-agent-7"  # the id the README's registration example exports
SPONSORING = "/claim"  # a block that takes another agent's run request: run as a second participant
SPONSOR = "sponsor-8"


def fenced_blocks(readme: str) -> list[tuple[str, str]]:
    """Each fenced block as (language, text), in order, indented ones (inside a list) included."""
    return [(lang, textwrap.dedent(m.group(1) + body) if m.group(1) else body) for m in FENCE.finditer(readme)
            for lang, body in [(m.group(2), m.group(3))]]  # fmt: skip


def frontmatter(text: str) -> dict[str, object]:
    assert text.startswith("---\n"), f"a Markdown example without its frontmatter:\n{text}"
    head, sep, _ = text.removeprefix("---\n").partition("\n---\n")
    fields = yaml.safe_load(head)
    assert sep and isinstance(fields, dict) and fields, f"no frontmatter mapping closed by ---:\n{text}"
    return fields


def check_parses(lang: str, text: str) -> None:
    if lang == "json":
        json.loads(text)
    elif lang == "python":
        compile(text, "<README example>", "exec")
    elif lang == "yaml":
        yaml.safe_load(text)
    elif lang == "markdown":
        frontmatter(text)
    elif lang == "bash":
        done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"bash cannot parse:\n{text}\n{done.stderr}"
    else:
        raise AssertionError(f"a ```{lang} block: no check for this language")


def collab_shim(folder: Path) -> Path:
    """A `collab` command on PATH that runs this checkout's CLI (what `pip install` would put there)."""
    folder.mkdir()
    script = folder / "collab"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m provision.cli "$@"\n', encoding="utf-8"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def run_blocks(blocks: list[str], work: Path, env: dict[str, str]) -> None:
    """Run README blocks in order in one shell, any error answer failing the run."""
    script = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n' + "".join(
        f"echo '### README example {n}' >&2\n{text}\n" for n, text in enumerate(blocks, 1)
    )
    ran = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"a README example failed:\n{ran.stderr[-3000:]}\n{ran.stdout[-2000:]}"


def test_every_readme_example_parses_and_runs_against_the_local_backend(
    collab: Path, port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, collab, "apply")[0] == 0
    target = local_target(collab)
    spec = target.loaded.spec
    token = local_tokens(target)["participant-1"]
    central = target.bucket_dir(spec.storage.central_bucket)
    score = spec.scoring.score_field

    up = Proc("provision.cli", "up", str(collab), "--port", str(port))
    backend_pid = None
    try:
        match = up.wait_for(r"Backend running at (\S+) \(pid (\d+);[\s\S]*Press Ctrl-C to stop\.")
        url, backend_pid = match.group(1), int(match.group(2))
        readme = (central / "README.md").read_text(encoding="utf-8")
        assert f"export COLLAB_API={url}\n" in readme  # seeded for the port `up` serves

        blocks = fenced_blocks(readme)
        for lang, text in blocks:
            check_parses(lang, text)
        posts = [t for lang, t in blocks if lang == "markdown" and score not in frontmatter(t)]
        results = [t for lang, t in blocks if lang == "markdown" and score in frontmatter(t)]
        scripts = [t for lang, t in blocks if lang == "bash" and HARNESS_RUN not in t and SPONSORING not in t]
        sponsoring = [t for lang, t in blocks if lang == "bash" and SPONSORING in t]
        skipped = [t for lang, t in blocks if lang == "bash" and HARNESS_RUN in t]
        assert posts and len(results) == 2 and len(scripts) >= 6 and skipped  # the type's example and the kit's
        assert all("curl" not in t for t in skipped)  # no API call is left out

        work = tmp_path / "agent"
        work.mkdir()
        (work / "post.md").write_text(posts[0], encoding="utf-8")
        (work / "result.md").write_text(results[-1], encoding="utf-8")
        shutil.copytree(ROOT / "challenge_gemma" / "examples" / "valid" / "int4_qat_mtp", work / "my-submission")
        env = {"PATH": f"{collab_shim(tmp_path / 'bin')}:/usr/bin:/bin", "HF_TOKEN": token, "HOME": str(tmp_path)}
        run_blocks(scripts, work, env)
        # Another participant's agent takes the run request the first one published, and launches it.
        if spec.jobs.enabled:
            assert sponsoring, "the README shows no example of sponsoring a run request"
            sponsor_token = local_tokens(target)["participant-2"]
            sponsor_bucket = target.bucket_dir(f"{spec.challenge.org}/{spec.challenge.slug}-{SPONSOR}")
            sponsor_bucket.mkdir(parents=True, exist_ok=True)
            (sponsor_bucket / "collab-handshake.txt").write_text("participant-2", encoding="utf-8")
            with httpx.Client(base_url=url, timeout=10) as api:
                joined = api.post("/v1/agents", json={"agent_id": SPONSOR},
                                  headers={"Authorization": f"Bearer {sponsor_token}"})  # fmt: skip
                assert joined.status_code == 201, joined.text
            run_blocks(sponsoring, work, {**env, "HF_TOKEN": sponsor_token, "COLLAB_API": url, "AGENT_ID": SPONSOR})

        with httpx.Client(base_url=url, timeout=10) as api:
            assert api.get(f"/v1/agents/{AGENT}").json()["user"] == "participant-1"
            messages = api.get("/v1/messages", params={"author": AGENT}).json()["items"]
            assert {m["attribution"] for m in messages} == {"raw", "promoted"}
            mine = api.get("/v1/results", params={"agent": AGENT}).json()["items"]
            assert [r["score"] for r in mine] == [frontmatter(results[-1])[score]]
            assert len(api.get("/v1/jobs", params={"agent": AGENT}).json()["items"]) == 1
            if spec.jobs.enabled:  # the run request the README published, launched by the sponsor on its quota
                (asked,) = api.get("/v1/run-requests").json()["items"]
                assert (asked["originator"], asked["state"], asked["sponsor"]) == (AGENT, "launched", SPONSOR)
                sponsored = api.get(f"/v1/jobs/{asked['job']}").json()
                assert (sponsored["agent"], sponsored["originator"]) == (SPONSOR, AGENT)
            # The type's result example is recorded as written, too.
            scratch = target.bucket_dir(f"{spec.challenge.org}/{spec.challenge.slug}-{AGENT}")
            (scratch / "results" / "task-example.md").write_text(results[0], encoding="utf-8")
            me = {"Authorization": f"Bearer {token}"}
            filed = api.post("/v1/results", json={"agent_id": AGENT, "path": "results/task-example.md"}, headers=me)
            assert filed.status_code == 201, filed.text
            # The type's denylist, seeded with the harness, is its standing rules; a launch matching one is refused.
            standing = api.get("/v1/rulings/standing").json()
            assert standing["problem"] is None and standing["count"] > 400, standing["problem"]
            denied = json.loads((work / "my-submission" / "submission.json").read_text(encoding="utf-8"))
            denied["engine_args"]["trust_remote_code"] = True
            (scratch / "denied").mkdir()
            (scratch / "denied" / "submission.json").write_text(json.dumps(denied), encoding="utf-8")
            refused = api.post("/v1/jobs", json={"agent_id": AGENT, "submission": "denied"}, headers=me)
            assert refused.status_code == 403 and "type:engine_args.trust_remote_code" in refused.text, refused.text
    finally:
        stop(up, backend_pid)
