"""The public instance of the tsp challenge, made from a seed so that anyone can re-make it.

`python -m challenge_tsp.instance` prints harness/instance.json; a test checks the committed file
is exactly that output. Only `random.Random.random` is used: Python promises its sequence for a
given seed across versions, which it does not promise for the other methods.
"""

from __future__ import annotations

import json
import random
from typing import TypedDict

SEED = 5081
CITIES = 1000
SIDE = 10_000  # coordinates are whole numbers in [0, SIDE)


class Instance(TypedDict):
    """The contents of instance.json."""

    name: str
    edge_weight: str
    description: str
    coordinates: list[list[int]]


def make_instance(cities: int = CITIES, seed: int = SEED) -> Instance:
    """Draw `cities` distinct points uniformly on the grid.

    Args:
        cities: How many cities.
        seed: The seed of the generator.

    Returns:
        The instance as written to instance.json.
    """
    rng = random.Random(seed)  # noqa: S311  # a reproducible instance, not a secret
    points: dict[tuple[int, int], None] = {}
    while len(points) < cities:
        points[(int(rng.random() * SIDE), int(rng.random() * SIDE))] = None
    return {
        "name": f"uniform-{cities}-seed{seed}",
        "edge_weight": "EUC_2D",
        "description": f"{cities} cities drawn uniformly from [0, {SIDE})^2 with random.Random({seed}).random()",
        "coordinates": [list(p) for p in points],
    }


def dumps(instance: Instance) -> str:
    """The instance as the committed file holds it: one city per line."""
    head = {k: v for k, v in instance.items() if k != "coordinates"}
    lines = [json.dumps(head)[:-1] + ', "coordinates": [']
    lines += [f"  {json.dumps(c)}," for c in instance["coordinates"]]
    lines[-1] = lines[-1].rstrip(",")
    return "\n".join([*lines, "]}"]) + "\n"


if __name__ == "__main__":
    print(dumps(make_instance()), end="")
