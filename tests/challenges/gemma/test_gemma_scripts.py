"""The organizer scripts' offline parts: prompt text, splits, documents, hashes, the bundled sample."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import build_prompt_sets as bps
import generate_baseline
import generate_references as refs
import make_sample
import pytest
import setlib
from gemma_eval import toy_tokenizer
from gemma_eval.data import load_eval_data, read_prompts, read_references, read_spot_items
from gemma_helpers import SAMPLE, SCRIPTS, schema_errors


def test_multiple_choice_text() -> None:
    text = setlib.multiple_choice_text(" What is 2 + 2? ", ["3", "4 "], instruction="End with ANSWER: X.")
    assert text == "What is 2 + 2?\n\n(A) 3\n(B) 4\n\nEnd with ANSWER: X."
    with pytest.raises(ValueError, match="2 to 10 choices"):
        setlib.multiple_choice_text("Q", ["only"])
    with pytest.raises(ValueError, match="2 to 10 choices"):
        setlib.multiple_choice_text("Q", [str(i) for i in range(11)])


def test_shuffled_choices_are_reproducible_and_keep_the_gold_letter() -> None:
    options, gold = setlib.shuffle_choices("gpqa-rec1", "right", ["w1", "w2", "w3"], seed=0)
    assert sorted(options) == ["right", "w1", "w2", "w3"] and options["ABCD".index(gold)] == "right"
    assert setlib.shuffle_choices("gpqa-rec1", "right", ["w1", "w2", "w3"], seed=0) == (options, gold)
    positions = {setlib.shuffle_choices(f"gpqa-{k}", "right", ["w1", "w2", "w3"], seed=0)[1] for k in range(40)}
    assert positions == set("ABCD"), "the correct answer must not always sit in one place"
    assert setlib.stable_int("x") == int.from_bytes(hashlib.blake2b(b"x", digest_size=8).digest(), "big")


def test_stratified_sample() -> None:
    items = [{"id": f"{s}-{k}", "s": s} for s in "ab" for k in range(5)]
    picked = setlib.stratified_sample(items, lambda it: it["s"], {"a": 2, "b": 3}, seed=1)
    assert [it["s"] for it in picked] == ["a", "a", "b", "b", "b"]
    assert picked == setlib.stratified_sample(items, lambda it: it["s"], {"a": 2, "b": 3}, seed=1)
    again = setlib.stratified_sample(items, lambda it: it["s"], {"a": 3}, seed=1, exclude=[it["id"] for it in picked])
    assert not {it["id"] for it in again} & {it["id"] for it in picked}
    with pytest.raises(ValueError, match="stratum 'a' has 5 items, 6 wanted"):
        setlib.stratified_sample(items, lambda it: it["s"], {"a": 6}, seed=1)


def test_documents_are_compact_json_with_one_entry_per_line(tmp_path: Path) -> None:
    doc = setlib.document(
        "gemma-prompts", "public", "tok", items=[{"id": "a", "x": [1, 2]}, {"id": "b", "x": []}], note="é"
    )
    text = setlib.dumps(doc)
    assert json.loads(text) == doc
    assert '    {"id": "a", "x": [1, 2]},\n    {"id": "b", "x": []}\n' in text and "é" in text
    digest = setlib.write(tmp_path / "sub" / "d.json", doc)
    assert digest == hashlib.sha256((tmp_path / "sub" / "d.json").read_bytes()).hexdigest()


def test_private_sets_are_never_written_into_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    with pytest.raises(SystemExit, match="refusing to write a private set"):
        setlib.refuse_repository_path(repo / "data" / "private", "private")
    setlib.refuse_repository_path(repo / "data" / "public", "public")
    setlib.refuse_repository_path(tmp_path / "elsewhere", "private")


@pytest.mark.parametrize(("folder", "set_name"), [(SAMPLE, "sample"), (make_sample.PRIVATE_SAMPLE, "private")])
def test_the_bundled_sample_is_what_make_sample_builds(folder: Path, set_name: str) -> None:
    authored = json.loads((folder / "authored.json").read_text(encoding="utf-8"))
    for name, doc in make_sample.sample_documents(authored, set_name).items():
        assert doc["set"] == set_name
        assert setlib.dumps(doc) == (folder / name).read_text(encoding="utf-8"), f"{name} is stale: run make_sample.py"


def test_the_private_sample_holds_other_prompts_than_the_public_one() -> None:
    """A rehearsal re-runs on other prompts, so the private figure is the private set's own."""
    ids, texts = [], []
    for folder in (SAMPLE, make_sample.PRIVATE_SAMPLE):
        prompts = json.loads((folder / "prompts.json").read_text(encoding="utf-8"))["items"]
        ids.append({p["id"] for p in prompts})
        texts.append({tuple(p["prompt_token_ids"]) for p in prompts})
    assert not ids[0] & ids[1] and not texts[0] & texts[1]


def test_the_fake_baseline_is_what_generate_baseline_measures(tmp_path: Path, sample_copy: Path) -> None:
    out = tmp_path / "fake.json"
    assert generate_baseline.main(["--data-dir", str(sample_copy), "--engine", "fake", "--out", str(out)]) == 0
    assert out.read_bytes() == (SAMPLE / "baselines" / "fake-v1.json").read_bytes()


MMLU_ROWS: list[dict[str, Any]] = [
    {"question_id": k, "question": f"Question {k}?", "options": ["a", "b", "c", "N/A"], "answer": "B", "category": cat}
    for k, cat in enumerate(["law", "math", "physics"] * 10)
] + [
    {
        "question_id": 900,
        "question": "Q?",
        "options": ["a", "b"],
        "answer": "D",
        "category": "law",
    },  # answer out of range
    {
        "question_id": 901,
        "question": "Q?",
        "options": ["a", "N/A"],
        "answer": "A",
        "category": "law",
    },  # one real option
]
GPQA_ROWS = [
    {
        "Record ID": f"rec{k}",
        "Question": f"Hard {k}?",
        "Correct Answer": "yes",
        **{f"Incorrect Answer {i}": f"no{i}" for i in (1, 2, 3)},
    }
    for k in range(12)
]
AIME_ROWS = [{"id": f"2026-{k}", "problem": f"Find n = {k}.", "answer": str(k)} for k in range(6)]


def test_source_items() -> None:
    mmlu = bps.mmlu_pro_items(MMLU_ROWS)
    assert len(mmlu) == 30, "rows with an impossible answer or too few options are dropped"
    assert mmlu[0].num_choices == 3 and "(C) c" in mmlu[0].text and "N/A" not in mmlu[0].text
    gpqa = bps.gpqa_items(GPQA_ROWS, seed=0)
    assert all(i.num_choices == 4 and f"({i.gold}) yes" in i.text for i in gpqa)
    aime = bps.aime_items(AIME_ROWS)
    assert aime[0].gold is None and bps.FREE_ANSWER in aime[0].text


def test_plan_sets_keeps_public_private_warmup_apart() -> None:
    items = bps.mmlu_pro_items(MMLU_ROWS) + bps.gpqa_items(GPQA_ROWS, 0) + bps.aime_items(AIME_ROWS)
    plan = bps.plan_sets(
        items,
        {"mmlu_pro": 6, "aime": 2},
        {"mmlu_pro": 6, "gpqa_diamond": 6, "aime": 4},
        {"gpqa_diamond": 8, "mmlu_pro": 5},
        seed=0,
    )
    public, private, warmup = ({i.id for i in group} for group in (plan.public, plan.private, plan.warmup))
    assert len(public) == 8 and len(private) == 16 and len(warmup) == bps.WARMUP
    assert not public & private and not warmup & (public | private)
    spot = {i.id for i in plan.spot}
    assert len(spot) == 13 and not spot & (public | warmup)
    subjects = [i.stratum for i in plan.spot if i.source == "mmlu_pro"]
    assert sorted(subjects) == ["law", "law", "math", "math", "physics"], "MMLU-Pro spot items spread over subjects"
    with pytest.raises(ValueError, match="gpqa_diamond"):
        bps.plan_sets(items, {"gpqa_diamond": 13}, {}, {}, seed=0)
    assert bps.parse_mix("mmlu_pro:57, gpqa_diamond:57,aime:14") == {"mmlu_pro": 57, "gpqa_diamond": 57, "aime": 14}
    with pytest.raises(ValueError, match="source:count"):
        bps.parse_mix("mmlu_pro=57")


def test_built_documents_satisfy_schema_and_loader(tmp_path: Path) -> None:
    items = bps.mmlu_pro_items(MMLU_ROWS) + bps.gpqa_items(GPQA_ROWS, 0)
    encode = lambda text: toy_tokenizer.chat_prompt([{"role": "user", "content": text}])  # noqa: E731
    stops = list(toy_tokenizer.STOP_TOKEN_IDS)
    prompts = bps.prompts_document("private", toy_tokenizer.NAME, items[:5], items[5:8], encode, stops)
    spot = bps.spot_document("private", toy_tokenizer.NAME, items[10:14], encode, stops)
    assert schema_errors(prompts, "gemma-prompts.schema.json") == []
    assert schema_errors(spot, "gemma-spot-items.schema.json") == []
    setlib.write(tmp_path / "prompts.json", prompts)
    setlib.write(tmp_path / "spot_items.json", spot)
    assert read_prompts(tmp_path / "prompts.json").items[0].gold == "B"
    assert read_spot_items(tmp_path / "spot_items.json").items[0].num_choices == 3
    contexts = {p["id"]: p["prompt_token_ids"] for p in prompts["items"]}
    targets = {rid: refs.cut_at_stop([*toy_tokenizer.encode("ok"), 5, 99], stops) for rid in contexts}
    targets[next(iter(targets))] = []
    references = refs.references_document("private", toy_tokenizer.NAME, "ref/model", contexts, targets, refs.SAMPLING)
    assert len(references["items"]) == 4, "a record with an empty continuation has nothing to score"
    assert references["items"][0]["target_token_ids"][-1] == toy_tokenizer.END_OF_TURN
    assert schema_errors(references, "gemma-references.schema.json") == []
    setlib.write(tmp_path / "references.json", references)
    assert len(read_references(tmp_path / "references.json").items) == 4
    assert load_eval_data(tmp_path).folder_set == "private"


def test_extra_reference_prompts() -> None:
    assert refs.extra_prompts(
        ['{"id": "code-1", "text": "def f(): pass"}', "", '{"id": "ja-1", "text": "こんにちは"}']
    ) == [
        {"id": "code-1", "text": "def f(): pass"},
        {"id": "ja-1", "text": "こんにちは"},
    ]
    with pytest.raises(ValueError, match="line 1"):
        refs.extra_prompts(['["not", "an", "object"]'])


@pytest.mark.parametrize(
    "script", ["build_prompt_sets.py", "generate_references.py", "generate_baseline.py", "make_sample.py"]
)
def test_every_script_explains_itself(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and len(done.stdout) > 200
