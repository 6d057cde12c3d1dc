"""Seeding the central bucket: the onboarding README's content, and plan/apply against the Hub fake.

The README tests read it as an agent would: every value of the spec is there, a changed limit
changes it, no placeholder is left, and spec text cannot open Markdown or HTML structure. The
apply tests are the ownership rules: an organizer's edit survives every apply without the flag,
the verification index is never overwritten, and harness files (the type's data beside the
harness included) move only when they changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import copier
import pytest
from plan_harness import ORG, TOKEN, no_wait, patch_spec

from collab_testing.hub import FakeHub
from provision.cli import main
from provision.naming import space_url
from provision.onboarding.readme import HANDSHAKE_FILE, VERIFICATION_INDEX, plain
from provision.plan.apply import apply_plan
from provision.plan.compute import compute_plan
from provision.plan.desired import IGNORED_SOURCES, desired_state
from provision.plan.observe import observe
from provision.plan.seed import README_PATH, RECORD_PATH, HarnessFile, harness_files
from provision.plan.session import Session, prepare
from provision.plan.views import DIFF_LINES, plan_json, render_plan_text
from provision.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
CENTRAL = f"{ORG}/gemma-collab-main-bucket"
ENV = {"HF_TOKEN": TOKEN}


def readme_of(collab: Path) -> str:
    seed = desired_state(load_spec(collab), collab, TOKEN).seed
    assert seed is not None
    return seed.readme


def headings(markdown: str) -> list[str]:
    """Lines that open a heading, outside fenced code."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            out.append(line)
    return out


@pytest.fixture(scope="module")
def tsp_collab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("tsp") / "collab"
    copier.run_copy(str(ROOT), dest, data={"challenge_type": "tsp"}, defaults=True, vcs_ref="HEAD", quiet=True)
    return dest


# -- the README's content -------------------------------------------------------------------


def test_gemma_readme_holds_every_value_of_the_spec(collab: Path) -> None:
    spec = load_spec(collab).spec
    text = readme_of(collab)
    b, s, j, v = spec.board, spec.scoring, spec.jobs, spec.verification
    expected = [
        f"# {spec.challenge.title}",
        spec.challenge.tagline,
        f"`{spec.storage.central_bucket}`",
        f"`{spec.challenge.org}/{spec.challenge.slug}-<agent_id>`",
        f'hf buckets create "{spec.challenge.org}/{spec.challenge.slug}-$AGENT_ID"',
        f"hf://buckets/{spec.challenge.org}/{spec.challenge.slug}-$AGENT_ID/{HANDSHAKE_FILE}",
        f"export COLLAB_API={space_url(spec.spaces.backend.id)}",
        '"$COLLAB_API/v1/agents" -H "Authorization: Bearer $HF_TOKEN"',
        f"{space_url(spec.spaces.backend.id)}/openapi.json",
        f"at most {b.raw_posts.limit} in any hour per agent",
        f"at most {b.promotions.limit} in any hour per scratch bucket",
        f"New ids per Hugging Face user: at most {b.registrations.limit} in any 24 hours",
        f"at most {b.mention_fanout_cap} handles",
        "at most 32 KiB of UTF-8 text",
        *[f"| `{c.name}` | {c.description} |" for c in b.channels],
        f"`{s.score_field}`",
        "higher is better",
        "`ppl` ≤ 2.42",
        *[f"`{t.name}` ({t.label}): {t.description}" for t in s.tracks],
        *[f"| `{f}` | required |" for f in s.required_fields if f not in ("ppl", "track")],
        "one of `lossless`, `lossy`; required",
        "max(0.01, 2.5 x 0.004 x sqrt 2) = 0.01414 of the larger score (1.41%)",
        f"Mode `{v.mode}`",
        f"relative tolerance of {v.tolerance} (10%)",
        "`quality_gate` ≤ 0",
        f"flavor `{j.flavor}`, image `{j.image}`, at most {j.timeout_minutes} minutes each",
        f"{j.quota.per_agent_per_day} runs per agent and {j.quota.per_user_per_day} per Hugging Face user",
        f"`{j.harness_prefix}{j.entrypoint}`",
        f"`{VERIFICATION_INDEX}`",
        "## The task: make Gemma 4 E4B decode as fast as possible",  # the type's task section
        "**Communicate in public only**",
        "| `POST /v1/results` `{agent_id, path}` | token |",
    ]
    missing = [e for e in expected if e not in text]
    assert not missing, missing
    assert "${" not in text and "{org}" not in text and "{slug}" not in text
    assert TOKEN not in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_a_changed_limit_changes_the_readme(collab: Path) -> None:
    before = readme_of(collab)
    patch_spec(
        collab,
        {
            "board": {"raw_posts": {"limit": 7, "window_seconds": 600}, "mention_fanout_cap": 3},
            "jobs": {"quota": {"per_agent_per_day": 2, "per_user_per_day": 9, "overrides": {"fast-agent": 11}}},
            "verification": {"tolerance": 0.05},
        },
    )
    after = readme_of(collab)
    assert "at most 7 in any 10 minutes per agent" in after and "at most 30 in any hour per agent" in before
    assert "at most 3 handles" in after and "at most 3 handles" not in before
    assert "2 runs per agent and 9 per Hugging Face user" in after
    assert "`fast-agent`: 11" in after
    assert "relative tolerance of 0.05 (5%)" in after


def test_tsp_readme_has_its_own_task_and_rules(tsp_collab: Path) -> None:
    spec = load_spec(tsp_collab).spec
    text = readme_of(tsp_collab)
    assert "## The task: the shortest tour through 1,000 cities" in text
    assert "## The task: make Gemma" not in text
    assert f"`{spec.scoring.score_field}`" in text and "lower is better" in text
    assert f"`{spec.jobs.harness_prefix}instance.json`" in text  # the task section's placeholder, rendered
    assert "Jobs are off in this collab" in text and "runs per agent" not in text
    assert "Mode `eval-space`" in text
    tie = "only exactly equal scores tie" if spec.scoring.noise.kind == "none" else "two scores tie when"
    assert tie in text
    assert "${" not in text


def test_spec_text_cannot_inject_markdown_or_html(collab: Path) -> None:
    evil = "<script>alert(1)</script> [x](javascript:alert(1)) | `code` *bold*"
    patch_spec(
        collab,
        {
            "challenge": {"title": "# Injected <b>heading</b>", "tagline": "<img src=x onerror=alert(1)> ---"},
            "board": {
                "channels": [
                    {"name": "general", "description": evil},
                    {"name": "results", "description": "fine"},
                ]
            },
        },
    )
    clean = readme_of(collab)
    assert not any(h.startswith("# Injected") for h in headings(clean))
    assert not re.search(r"(?<!\\)<(script|img|b>)", clean) and not re.search(r"(?<!\\)\]\(javascript:", clean)
    assert plain(evil) in clean  # shown as text, escaped
    lines = clean.splitlines()
    assert lines[0] == "# \\# Injected \\<b\\>heading\\</b\\>"
    assert lines[2] == "*\\<img src=x onerror=alert(1)\\> ---*"
    row = next(line for line in lines if line.startswith("| `general` |"))
    assert row.count(" | ") == 1  # the pipe in the description stays inside its cell


def test_plain_and_headings_are_those_of_the_kit(collab: Path) -> None:
    text = readme_of(collab)
    top = [h for h in headings(text) if h.startswith("## ")]
    assert top[:2] == ["## At a glance", "## The task: make Gemma 4 E4B decode as fast as possible"]
    assert "## 1. Register your agent" in top and top[-1] == "## API reference"
    assert plain("a*b_c[d]<e>|f`g") == "a\\*b\\_c\\[d\\]\\<e\\>\\|f\\`g"


def test_space_url_is_the_hubs_address() -> None:
    assert space_url("My-Org/the_backend.v2") == "https://my-org-the-backend-v2.hf.space"


# -- plan and apply against the Hub fake -----------------------------------------------------


def applied(collab: Path, hub: FakeHub, *, overwrite_readme: bool = False) -> Session:
    session = prepare(collab, hub, environ=ENV, overwrite_readme=overwrite_readme)
    apply_plan(hub, TOKEN, session.plan, session.desired, progress=lambda _l: None, wait=no_wait())
    return session


def put(hub: FakeHub, path: str, data: bytes) -> None:
    hub.batch_bucket_files(CENTRAL, add=[(data, path)], token=TOKEN)


def central_text(hub: FakeHub, path: str) -> str:
    return hub.buckets[CENTRAL].files[path].data.decode()


def test_apply_seeds_the_central_bucket_and_replanning_is_empty(collab: Path, hub: FakeHub) -> None:
    session = applied(collab, hub)
    seed = session.desired.seed
    assert seed is not None
    files = hub.buckets[CENTRAL].files
    assert central_text(hub, README_PATH) == seed.readme
    assert central_text(hub, VERIFICATION_INDEX) == "{}\n"
    assert set(seed.harness) <= set(files) and f"{seed.harness_prefix}run.py" in files
    assert f"{seed.harness_prefix}data/sample/prompts.json" in files  # the type's data, beside run.py
    assert not any("__pycache__" in p for p in files)
    record = json.loads(central_text(hub, RECORD_PATH))["files"]
    assert set(record) == {README_PATH, *seed.harness}  # the index is the backend's, never recorded
    for path, entry in record.items():
        assert entry["hub_hash"] == files[path].hash
    for path, stored in files.items():
        assert TOKEN.encode() not in stored.data, path
    assert prepare(collab, hub, environ=ENV).plan.in_sync


def test_an_organizer_edit_survives_apply_until_the_flag(
    collab: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    applied(collab, hub)
    edited = central_text(hub, README_PATH).replace("## 9. Norms", "## 9. Norms\n\n- Organizer rule: be kind.", 1)
    put(hub, README_PATH, edited.encode())
    patch_spec(collab, {"board": {"mention_fanout_cap": 4}})  # the spec changes too: still kept

    session = prepare(collab, hub, environ=ENV)
    action = next(a for a in session.plan.actions if a.address == "seed.readme")
    assert action.action == "kept" and action.diff is not None
    assert "-- Organizer rule: be kind." in action.diff and "+" in action.diff
    assert not [a for a in session.plan.pending if a.resource == "seed"]  # nothing to apply: the edit is kept
    text = render_plan_text(session.plan, token_source="HF_TOKEN")  # noqa: S106  # a source name
    assert "! kept    seed.readme" in text and "|  - Organizer rule: be kind." not in text
    assert "| -- Organizer rule: be kind." in text
    assert plan_json(session.plan)["actions"][[a.address for a in session.plan.actions].index("seed.readme")][
        "diff"
    ] == (action.diff)

    applied(collab, hub)
    assert central_text(hub, README_PATH) == edited

    # The CLI: plan shows it (exit 0: in sync), apply keeps it, apply --overwrite-readme replaces it.
    monkeypatch.setattr("provision.hub.client.connect", lambda: hub)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["plan", str(collab)]) == 0
    out = capsys.readouterr().out
    assert "! kept" in out and "--overwrite-readme" in out and TOKEN not in out
    assert main(["apply", "--poll-interval", "0", str(collab)]) == 0
    assert central_text(hub, README_PATH) == edited
    assert main(["plan", "--overwrite-readme", str(collab)]) == 2
    assert main(["apply", "--overwrite-readme", "--poll-interval", "0", str(collab)]) == 0
    out = capsys.readouterr().out
    assert TOKEN not in out
    assert "Organizer rule" not in central_text(hub, README_PATH)
    assert "at most 4 handles" in central_text(hub, README_PATH)
    assert prepare(collab, hub, environ=ENV).plan.in_sync


def test_a_tool_written_readme_follows_the_spec(collab: Path, hub: FakeHub) -> None:
    applied(collab, hub)
    patch_spec(collab, {"board": {"raw_posts": {"limit": 12, "window_seconds": 3600}}})
    session = prepare(collab, hub, environ=ENV)
    action = next(a for a in session.plan.actions if a.address == "seed.readme")
    assert action.action == "update" and action.diff is not None
    assert "+- Raw posts (and channel creations): at most 12 in any hour per agent." in action.diff
    applied(collab, hub)
    assert "at most 12 in any hour per agent" in central_text(hub, README_PATH)
    assert prepare(collab, hub, environ=ENV).plan.in_sync


def test_a_long_diff_is_cut_in_the_table_but_whole_in_json(collab: Path, hub: FakeHub) -> None:
    applied(collab, hub)
    put(hub, README_PATH, b"# Our own README\n" + b"".join(b"line %d\n" % i for i in range(100)))
    session = prepare(collab, hub, environ=ENV)
    text = render_plan_text(session.plan, token_source="HF_TOKEN")  # noqa: S106  # a source name
    diff_lines = [line for line in text.splitlines() if line.startswith("      | ")]
    assert len(diff_lines) == DIFF_LINES + 1 and "more diff line(s)" in diff_lines[-1]
    document = plan_json(session.plan)
    whole = next(a["diff"] for a in document["actions"] if a["address"] == "seed.readme")
    assert "-line 99" in whole


def test_the_verification_index_is_never_overwritten(collab: Path, hub: FakeHub) -> None:
    applied(collab, hub)
    verdicts = b'{"r1-agent": {"verdict": "valid", "by": "human:alice"}}\n'
    put(hub, VERIFICATION_INDEX, verdicts)
    hub.batch_bucket_files(CENTRAL, delete=[RECORD_PATH], token=TOKEN)  # even with the record gone
    session = prepare(collab, hub, environ=ENV)
    assert next(a for a in session.plan.actions if a.address == "seed.verification_index").action == "no-op"
    applied(collab, hub)
    assert hub.buckets[CENTRAL].files[VERIFICATION_INDEX].data == verdicts

    # Planned while absent, written by the backend before apply gets there: apply leaves it.
    hub.batch_bucket_files(CENTRAL, delete=[VERIFICATION_INDEX], token=TOKEN)
    session = prepare(collab, hub, environ=ENV)
    assert next(a for a in session.plan.actions if a.address == "seed.verification_index").action == "create"
    put(hub, VERIFICATION_INDEX, verdicts)
    apply_plan(hub, TOKEN, session.plan, session.desired, progress=lambda _l: None, wait=no_wait())
    assert hub.buckets[CENTRAL].files[VERIFICATION_INDEX].data == verdicts


def test_harness_files_move_only_when_they_changed(collab: Path, hub: FakeHub, tmp_path: Path) -> None:
    session = applied(collab, hub)
    seed = session.desired.seed
    assert seed is not None
    batches = hub.calls["batch_bucket_files"]
    applied(collab, hub)
    assert hub.calls["batch_bucket_files"] == batches  # nothing changed, nothing written

    run_py = f"{seed.harness_prefix}run.py"
    put(hub, run_py, b"print('tampered')\n")  # changed in the bucket
    session = prepare(collab, hub, environ=ENV)
    harness = next(a for a in session.plan.actions if a.address == "seed.harness")
    assert harness.action == "update" and harness.changes[0].after == {"upload": [run_py], "delete": []}
    applied(collab, hub)
    assert hub.buckets[CENTRAL].files[run_py].data == seed.harness[run_py].source.read_bytes()

    # A new version of the type's harness: one file changed, one gone, one new.
    folder = tmp_path / "harness"
    folder.mkdir()
    (folder / "run.py").write_text("print('v2')\n", encoding="utf-8")
    (folder / "new_helper.py").write_text("X = 1\n", encoding="utf-8")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    v2 = dataclasses.replace(seed, harness=harness_files(folder, seed.harness_prefix, IGNORED_SOURCES))
    desired = dataclasses.replace(session.desired, seed=v2)
    observed = observe(hub, TOKEN, session.identity, desired)
    plan = compute_plan(desired, observed)
    change = next(a for a in plan.actions if a.address == "seed.harness").changes[0].after
    assert change["upload"] == [f"{seed.harness_prefix}new_helper.py", run_py]
    assert set(change["delete"]) == set(seed.harness) - {run_py}
    foreign = f"{seed.harness_prefix}organizer_notes.txt"  # not the tool's: never deleted
    put(hub, foreign, b"keep me\n")
    apply_plan(hub, TOKEN, plan, desired, progress=lambda _l: None, wait=no_wait())
    files = hub.buckets[CENTRAL].files
    assert files[run_py].data == b"print('v2')\n" and foreign in files
    assert not any(p in files for p in change["delete"])
    assert compute_plan(desired, observe(hub, TOKEN, session.identity, desired)).in_sync


def test_the_readme_names_the_backends_own_paths() -> None:
    from collab_backend import naming

    assert HANDSHAKE_FILE == naming.HANDSHAKE_FILE
    assert VERIFICATION_INDEX == naming.VERIFICATION_INDEX


def test_the_types_data_is_seeded_beside_the_harness(collab: Path, hub: FakeHub, tmp_path: Path) -> None:
    """Gemma's harness_data lands under <harness_prefix>data/, recorded and kept in sync like the harness."""
    from provision.challenge_types import load_type

    session = applied(collab, hub)
    seed = session.desired.seed
    assert seed is not None
    gemma = load_type("gemma")
    assert gemma.harness_data_dir is not None
    data = f"{seed.harness_prefix}data/"
    expected = {
        data + p.relative_to(gemma.harness_data_dir).as_posix()
        for p in gemma.harness_data_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    files = hub.buckets[CENTRAL].files
    assert {p for p in files if p.startswith(data)} == expected
    sample = gemma.harness_data_dir / "sample" / "prompts.json"
    assert files[data + "sample/prompts.json"].data == sample.read_bytes()
    record = json.loads(central_text(hub, RECORD_PATH))["files"]
    assert expected <= set(record)

    # The organizers add the public set beside the sample: not the tool's, never deleted.
    public = data + "prompts.json"
    put(hub, public, b'{"format": "gemma-prompts"}\n')
    assert prepare(collab, hub, environ=ENV).plan.in_sync

    # A new version of the type's data: one file changed, one dropped.
    changed = tmp_path / "prompts.json"
    changed.write_bytes(b"[]\n")
    dropped = data + "sample/spot_items.json"
    harness = {p: f for p, f in seed.harness.items() if p != dropped}
    harness[data + "sample/prompts.json"] = HarnessFile(changed, hashlib.sha256(b"[]\n").hexdigest())
    desired = dataclasses.replace(session.desired, seed=dataclasses.replace(seed, harness=harness))
    plan = compute_plan(desired, observe(hub, TOKEN, session.identity, desired))
    change = next(a for a in plan.actions if a.address == "seed.harness").changes[0].after
    assert change == {"upload": [data + "sample/prompts.json"], "delete": [dropped]}
    apply_plan(hub, TOKEN, plan, desired, progress=lambda _l: None, wait=no_wait())
    files = hub.buckets[CENTRAL].files
    assert files[data + "sample/prompts.json"].data == b"[]\n" and dropped not in files and public in files
    assert compute_plan(desired, observe(hub, TOKEN, session.identity, desired)).in_sync
