"""The pure parts of the organizer scripts: prompt text, deterministic splits, documents, hashes.

Everything here is offline and deterministic, so it is unit-tested; the scripts add only the
parts that need the network or a GPU (dataset downloads, the real tokenizer, vLLM). Nothing here
reads or writes a private item by itself: callers choose the output folders, and private folders
are never inside the repository.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

HARNESS = Path(__file__).resolve().parents[1] / "harness"
LETTERS = "ABCDEFGHIJ"
ANSWER_INSTRUCTION = (
    "Think step by step, then end with a line of the form 'ANSWER: X' where X is the letter of your choice."
)
T = TypeVar("T")


def use_harness() -> None:
    """Make the harness package (`gemma_eval`) importable, as the scripts share its code."""
    if str(HARNESS) not in sys.path:
        sys.path.insert(0, str(HARNESS))


def multiple_choice_text(question: str, choices: Sequence[str], instruction: str = ANSWER_INSTRUCTION) -> str:
    """The user turn of a multiple-choice item: question, lettered options, answer-format line.

    Raises:
        ValueError: Fewer than two or more than ten choices.
    """
    if not 2 <= len(choices) <= len(LETTERS):
        raise ValueError(f"a question needs 2 to {len(LETTERS)} choices, not {len(choices)}")
    options = "\n".join(f"({letter}) {choice.strip()}" for letter, choice in zip(LETTERS, choices, strict=False))
    return f"{question.strip()}\n\n{options}\n\n{instruction}"


def shuffle_choices(item_id: str, correct: str, incorrect: Sequence[str], seed: int) -> tuple[list[str], str]:
    """Options in an order fixed by the item id and seed, and the letter of the correct one.

    Sources such as GPQA list the correct answer first; a fixed shuffle removes that position cue
    while staying reproducible.
    """
    options = [correct, *incorrect]
    random.Random(stable_int(f"{seed}:{item_id}")).shuffle(options)  # noqa: S311 - a reproducible order
    return options, LETTERS[options.index(correct)]


def stable_int(text: str) -> int:
    """A 64-bit integer from text, the same on every machine and Python (unlike hash())."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def stratified_sample(
    items: Sequence[T], key: Callable[[T], str], counts: Mapping[str, int], seed: int, exclude: Iterable[str] = ()
) -> list[T]:
    """Pick `counts[stratum]` items of each stratum, in a seeded order, skipping excluded ids.

    Args:
        items: Candidates; each needs an `id` key or attribute (as a mapping key).
        key: The stratum of an item (its source or subject).
        counts: Items wanted per stratum.
        seed: Seed of the order.
        exclude: Ids already used elsewhere (e.g. by the public set).

    Raises:
        ValueError: A stratum has too few items.
    """
    skip = set(exclude)
    chosen: list[T] = []
    for stratum, wanted in counts.items():
        pool = [it for it in items if key(it) == stratum and _item_id(it) not in skip]
        pool.sort(key=lambda it: stable_int(f"{seed}:{stratum}:{_item_id(it)}"))
        if len(pool) < wanted:
            raise ValueError(f"stratum {stratum!r} has {len(pool)} items, {wanted} wanted")
        chosen += pool[:wanted]
    return chosen


def _item_id(item: Any) -> str:
    return str(item["id"] if isinstance(item, Mapping) else item.id)


def document(fmt: str, set_name: str, tokenizer: str, **fields: Any) -> dict[str, Any]:
    """A data document's header and fields, in the schemas' order."""
    return {"format": fmt, "version": 1, "set": set_name, "tokenizer": tokenizer, **fields}


def dumps(doc: Mapping[str, Any]) -> str:
    """JSON with the header indented and each list entry on one line: readable, diffable, compact."""
    lines = ["{"]
    keys = list(doc)
    for index, key in enumerate(keys):
        comma = "," if index < len(keys) - 1 else ""
        value = doc[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            entries = ",\n".join("    " + json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f"  {json.dumps(key)}: [\n{entries}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(path: Path, doc: Mapping[str, Any]) -> str:
    """Write a document and return its SHA-256 (what summaries report as the set's hash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dumps(doc).encode("utf-8")
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def refuse_repository_path(folder: Path, set_name: str) -> None:
    """Refuse to write a private set anywhere inside a git work tree: private items never go into a repository.

    Raises:
        SystemExit: `folder` is inside a git work tree.
    """
    if set_name != "private":
        return
    for parent in [folder.resolve(), *folder.resolve().parents]:
        if (parent / ".git").exists():
            raise SystemExit(f"refusing to write a private set inside the git work tree at {parent}")
