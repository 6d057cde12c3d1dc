"""Build the public and private prompt sets and the private spot-check items from public datasets.

Sources: MMLU-Pro (`TIGER-Lab/MMLU-Pro`, test split, from the Hub), GPQA-Diamond (the CSV of the
GPQA release, or the gated `Idavidrein/gpqa` dataset; its authors ask that items are not posted
publicly, so by default only the private files hold GPQA items) and AIME problems from a JSONL file
you supply (`{"id", "problem", "answer"}` per line). Every prompt is one user turn: a
multiple-choice question ends with the `ANSWER: X` instruction the spot checks grade. The chat
template of `--tokenizer` is applied once, here, so submissions never tokenize. Selection is
stratified by source (and by MMLU-Pro subject for spot items) and seeded, so the same inputs give
the same sets. Warmup prompts and spot items never overlap the public prompts.

Needs the network and `datasets` + `transformers` (pip install datasets transformers). Writes:

    PUBLIC_OUT/prompts.json                 upload with the harness (its data/ folder)
    PRIVATE_OUT/prompts.json, spot_items.json   the audit bucket's private set, never a repository

Then generate_references.py and generate_baseline.py complete both folders.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import setlib

DEFAULT_PUBLIC_MIX = "mmlu_pro:114,aime:14"
DEFAULT_PRIVATE_MIX = "mmlu_pro:114,gpqa_diamond:114,aime:28"
DEFAULT_SPOT = "gpqa_diamond:64,mmlu_pro:70"
WARMUP = 8
FREE_ANSWER = "Solve the problem. Give the final answer as an integer on the last line."


@dataclass(frozen=True)
class Item:
    """One question, ready to template: its text, and a gold letter for multiple choice."""

    id: str
    source: str
    text: str
    gold: str | None
    num_choices: int
    stratum: str


def mmlu_pro_items(rows: Iterable[Mapping[str, Any]]) -> list[Item]:
    """MMLU-Pro rows (`question_id`, `question`, `options`, `answer`, `category`) as items."""
    items = []
    for row in rows:
        options = [o for o in row["options"] if str(o).strip() and str(o).strip() != "N/A"]
        if not 2 <= len(options) <= len(setlib.LETTERS) or row["answer"] not in setlib.LETTERS[: len(options)]:
            continue
        item_id = f"mmlu_pro-{row['question_id']}"
        text = setlib.multiple_choice_text(row["question"], options)
        items.append(Item(item_id, "mmlu_pro", text, row["answer"], len(options), str(row["category"])))
    return items


def gpqa_items(rows: Iterable[Mapping[str, Any]], seed: int) -> list[Item]:
    """GPQA rows (`Record ID`, `Question`, `Correct Answer`, `Incorrect Answer 1..3`), options shuffled per item."""
    items = []
    for row in rows:
        item_id = f"gpqa-{row['Record ID']}"
        wrong = [row[f"Incorrect Answer {k}"] for k in (1, 2, 3)]
        options, gold = setlib.shuffle_choices(item_id, row["Correct Answer"], wrong, seed)
        items.append(
            Item(item_id, "gpqa_diamond", setlib.multiple_choice_text(row["Question"], options), gold, 4, "gpqa")
        )
    return items


def aime_items(rows: Iterable[Mapping[str, Any]]) -> list[Item]:
    """AIME rows (`id`, `problem`) as free-answer items (no gold letter)."""
    return [
        Item(f"aime-{row['id']}", "aime", f"{row['problem'].strip()}\n\n{FREE_ANSWER}", None, 0, "aime") for row in rows
    ]


def parse_mix(text: str) -> dict[str, int]:
    """`source:count,...` as a mapping.

    Raises:
        ValueError: A part is not `name:positive integer`.
    """
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, count = part.partition(":")
        if not sep or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{part!r}: write source:count, e.g. mmlu_pro:114")
        mix[name] = int(count)
    return mix


@dataclass(frozen=True)
class Plan:
    """Which items go where."""

    public: list[Item]
    private: list[Item]
    warmup: list[Item]
    spot: list[Item]


def plan_sets(
    items: Sequence[Item],
    public_mix: Mapping[str, int],
    private_mix: Mapping[str, int],
    spot_mix: Mapping[str, int],
    seed: int,
) -> Plan:
    """Split items into disjoint public and private prompts, warmups and spot items.

    Public prompts, private prompts and warmups are disjoint. Spot items avoid the public prompts
    and warmups but may repeat private prompts (GPQA-Diamond has only 198 items); MMLU-Pro spot
    items are spread evenly over its subjects.

    Raises:
        ValueError: A source has too few items for what is asked.
    """
    by_source: Callable[[Item], str] = lambda it: it.source  # noqa: E731 - a key named once
    public = setlib.stratified_sample(items, by_source, public_mix, seed)
    private = setlib.stratified_sample(items, by_source, private_mix, seed + 1, exclude=[i.id for i in public])
    used = [i.id for i in public + private]
    warmup = setlib.stratified_sample(items, by_source, {"mmlu_pro": WARMUP}, seed + 2, exclude=used)
    avoid = [i.id for i in public + warmup]
    spot: list[Item] = []
    for source, count in spot_mix.items():
        pool = [i for i in items if i.source == source and i.gold is not None]
        if source == "mmlu_pro":
            subjects = sorted({i.stratum for i in pool})
            per = {s: count // len(subjects) + (k < count % len(subjects)) for k, s in enumerate(subjects)}
            spot += setlib.stratified_sample(pool, lambda it: it.stratum, per, seed + 3, exclude=avoid + used)
        else:
            spot += setlib.stratified_sample(pool, by_source, {source: count}, seed + 3, exclude=avoid)
    return Plan(public, private, warmup, spot)


def prompts_document(
    set_name: str,
    tokenizer: str,
    items: Sequence[Item],
    warmup: Sequence[Item],
    encode: Callable[[str], list[int]],
    stops: list[int],
) -> dict[str, Any]:
    """prompts.json for one set; `encode` turns a user turn into templated ids."""

    def entry(item: Item) -> dict[str, Any]:
        out: dict[str, Any] = {"id": item.id, "source": item.source, "prompt_token_ids": encode(item.text)}
        return out | ({"gold": item.gold} if item.gold else {})

    return setlib.document(
        "gemma-prompts",
        set_name,
        tokenizer,
        template="the tokenizer's chat template: one user turn, generation prompt added",
        stop_token_ids=stops,
        items=[entry(i) for i in items],
        warmup=[entry(i) for i in warmup],
    )


def spot_document(
    set_name: str, tokenizer: str, items: Sequence[Item], encode: Callable[[str], list[int]], stops: list[int]
) -> dict[str, Any]:
    """spot_items.json for one set."""
    entries = [
        {
            "id": i.id,
            "task": i.source,
            "prompt_token_ids": encode(i.text),
            "gold": i.gold,
            "num_choices": i.num_choices,
        }
        for i in items
    ]
    return setlib.document("gemma-spot-items", set_name, tokenizer, stop_token_ids=stops, items=entries)


def _load_sources(args: argparse.Namespace) -> list[Item]:  # needs the network
    import datasets

    items = mmlu_pro_items(datasets.load_dataset("TIGER-Lab/MMLU-Pro", split="test"))
    if args.gpqa_csv:
        with args.gpqa_csv.open(encoding="utf-8", newline="") as handle:
            items += gpqa_items(csv.DictReader(handle), args.seed)
    else:
        items += gpqa_items(datasets.load_dataset("Idavidrein/gpqa", "gpqa_diamond", split="train"), args.seed)
    if args.aime_jsonl:
        lines = args.aime_jsonl.read_text(encoding="utf-8").splitlines()
        items += aime_items(json.loads(line) for line in lines if line.strip())
    return items


def _encoder(
    name: str, revision: str | None, template_kwargs: Mapping[str, Any]
) -> tuple[Callable[[str], list[int]], list[int]]:  # needs the network
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)

    def encode(text: str) -> list[int]:
        # Render the template to text, then tokenize it as is: the template already holds BOS.
        chat = [{"role": "user", "content": text}]
        rendered = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True, **template_kwargs)
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])

    eos = GenerationConfig.from_pretrained(name, revision=revision).eos_token_id
    stops = sorted({*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id} - {None})
    return encode, stops


def main(argv: list[str] | None = None) -> int:  # needs the network
    parser = argparse.ArgumentParser(
        description="Build the public and private prompt sets and the private spot items.",
        epilog="Selection is seeded; see the module docstring for sources and outputs.",
    )
    parser.add_argument("--public-out", type=Path, required=True, help="folder for the public prompts.json")
    parser.add_argument(
        "--private-out", type=Path, required=True, help="folder for the private files (outside any repository)"
    )
    parser.add_argument(
        "--gpqa-csv", type=Path, help="GPQA-Diamond CSV; default: the gated Hub dataset (needs HF_TOKEN)"
    )
    parser.add_argument("--aime-jsonl", type=Path, help='AIME problems, one {"id", "problem", "answer"} per line')
    parser.add_argument("--tokenizer", default="google/gemma-4-E4B-it", help="tokenizer and chat template")
    parser.add_argument("--tokenizer-revision", help="pin the tokenizer to a commit")
    parser.add_argument(
        "--template-kwargs", default='{"enable_thinking": false}', help="JSON passed to the chat template"
    )
    parser.add_argument(
        "--public-mix", default=DEFAULT_PUBLIC_MIX, help=f"source:count,... (default {DEFAULT_PUBLIC_MIX})"
    )
    parser.add_argument("--private-mix", default=DEFAULT_PRIVATE_MIX, help=f"(default {DEFAULT_PRIVATE_MIX})")
    parser.add_argument("--spot", default=DEFAULT_SPOT, help=f"spot items per task (default {DEFAULT_SPOT})")
    parser.add_argument("--seed", type=int, default=0, help="selection seed")
    args = parser.parse_args(argv)
    setlib.refuse_repository_path(args.private_out, "private")
    plan = plan_sets(
        _load_sources(args), parse_mix(args.public_mix), parse_mix(args.private_mix), parse_mix(args.spot), args.seed
    )
    encode, stops = _encoder(args.tokenizer, args.tokenizer_revision, json.loads(args.template_kwargs))
    outputs = {
        args.public_out / "prompts.json": prompts_document(
            "public", args.tokenizer, plan.public, plan.warmup, encode, stops
        ),
        args.private_out / "prompts.json": prompts_document(
            "private", args.tokenizer, plan.private, plan.warmup, encode, stops
        ),
        args.private_out / "spot_items.json": spot_document("private", args.tokenizer, plan.spot, encode, stops),
    }
    for path, doc in outputs.items():
        print(f"{path}: {len(doc['items'])} items, sha256 {setlib.write(path, doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
