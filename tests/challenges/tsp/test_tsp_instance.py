"""The tsp instance is what its seed makes, and the type's texts agree with it."""

from __future__ import annotations

import hashlib

from challenge_tsp.harness.run import INSTANCE_FILE, load_instance
from challenge_tsp.instance import CITIES, SIDE, dumps, make_instance
from provision.challenge_types import load_type


def test_committed_instance_is_the_seeded_one() -> None:
    assert INSTANCE_FILE.read_text(encoding="utf-8") == dumps(make_instance()), (
        "harness/instance.json differs from its seed: run `python -m challenge_tsp.instance > "
        "challenge_tsp/harness/instance.json`"
    )


def test_instance_shape() -> None:
    instance = load_instance()
    assert instance.cities == CITIES == len(set(instance.coordinates))
    assert all(0 <= x < SIDE and 0 <= y < SIDE for x, y in instance.coordinates)
    assert instance.sha256 == hashlib.sha256(INSTANCE_FILE.read_bytes()).hexdigest()


def test_texts_name_the_instance_size() -> None:
    ctype = load_type("tsp")
    size = f"{CITIES:,}"
    assert size in ctype.title and size in ctype.summary
    assert f"{size} cities" in ctype.task_path.read_text(encoding="utf-8")
    assert f"0 to {CITIES - 1}" in ctype.task_path.read_text(encoding="utf-8")
