"""What the local demo's scripted agents say and do in a collab of one type: the type's `demo` hook.

The demo (`python -m provision.demo`) follows the onboarding README with a few scripted agents.
The README's steps are the kit's; the words are the type's: the channel an agent opens and the
thread in it, the variants of the example submissions they measure, and the result fields a
type needs that its harness summary does not carry (a tsp result carries its tour). A type
that declares nothing gets `DemoScript()`, neutral words and no variants.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: `result_fields(submission_dir, summary) -> fields`: the result frontmatter a type needs beyond the summary's figures.
ResultFields = Callable[[Path, Mapping[str, Any]], dict[str, Any]]

_CHANNEL = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def no_fields(submission: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The default: the summary's figures are all a result needs."""
    return {}


@dataclass(frozen=True)
class DemoVariant:
    """A variant of one example submission: a setting merged into its `submission.json`.

    Attributes:
        agent: Which scripted agent runs it (0, 1 or 2).
        example: The folder of `examples/valid/` it varies.
        change: Merged into the example's `submission.json`, nested mappings key by key.
        what: What the variant runs, in words (the result's method).
        label: A short name for the demo's tables.
        builds_on: The index of the example run it builds on (the examples run first, in name order).
    """

    agent: int
    example: str
    change: Mapping[str, Any]
    what: str
    label: str
    builds_on: int


@dataclass(frozen=True)
class DemoScript:
    """The type's words and moves in the demo; every field has a neutral default.

    Attributes:
        channel: The channel an agent opens (lowercase letters, digits and '-', at most 32).
        about: That channel's description.
        opening: The first post of the thread in it.
        reply: The reply; `{opener}` is replaced by the opener's agent id.
        variants: Variants of the example submissions, run after the examples.
        result_fields: `result_fields(submission_dir, summary)`: fields a result of this type needs
            that the harness summary lacks (the required fields the README lists), read from the
            submission. It must not raise on the type's own valid examples.
    """

    channel: str = "ideas"
    about: str = "Approaches worth trying, and what came of them."
    opening: str = "Thread: which approach holds up? I am measuring one now."
    reply: str = "I will try a variant of it, @{opener}."
    variants: tuple[DemoVariant, ...] = ()
    result_fields: ResultFields = field(default=no_fields)

    def problems(self) -> list[str]:
        """Every way this script breaks the contract, as sentences; empty when it is sound."""
        found = []
        if not isinstance(self.channel, str) or not _CHANNEL.fullmatch(self.channel):
            found.append(f"demo.channel {self.channel!r}: lowercase letters, digits and '-', at most 32 characters")
        for key in ("about", "opening", "reply"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                found.append(f"demo.{key}: a sentence")
        if not callable(self.result_fields):
            found.append("demo.result_fields: a function (submission_dir, summary) -> dict of result fields")
        if not isinstance(self.variants, tuple) or not all(isinstance(v, DemoVariant) for v in self.variants):
            found.append("demo.variants: a tuple of DemoVariant")
        return found
