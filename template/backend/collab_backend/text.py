"""What text the record can store: every string a request or a promoted file brings in.

The record is written as UTF-8 (index lines, Markdown files with YAML frontmatter), so a lone
surrogate (half of a UTF-16 pair, which JSON and YAML escapes can spell) cannot be stored at
all, and a NUL character would be written raw into a text file that tools then read as binary.
Both are refused where text comes in, naming where they were found.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    r"""What in `text` cannot be stored (e.g. "a lone surrogate (\ud800)"), or None when all of it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "a NUL character (\\u0000)"
    return f"a lone surrogate (\\u{ord(char):04x})"


def is_surrogate(problem: str) -> bool:
    """Whether a problem `unstorable` named is a lone surrogate (not UTF-8 at all) rather than a NUL."""
    return problem.startswith("a lone surrogate")
