"""One reported problem in a challenge spec, and how it is printed.

Every problem carries a location (`file:line:col`), the JSON path of the value, what was found,
what would be valid and a hint; the CLI prints all of them at once, sorted by position.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from provision.errors import ProvisionError

Severity = Literal["error", "warning"]
JsonPath = tuple[str | int, ...]


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def json_path(path: Sequence[str | int]) -> str:
    """Render a path the way JSONPath does: `$.scoring.metrics[0].field`.

    Keys that are not plain names are quoted with JSON escapes, so a key holding terminal
    control sequences is shown, never executed by the terminal.
    """
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if _PLAIN_KEY.match(part) else f"[{json.dumps(part)}]"
    return out


def show_value(value: object, limit: int = 60) -> str:
    """A short, YAML-flavoured rendering of a found value for messages."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    elif isinstance(value, dict):
        text = "a mapping" if value else "an empty mapping"
    elif isinstance(value, list):
        text = f"a list of {len(value)} item{'s' * (len(value) != 1)}"
    else:
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """The closest choice to a misspelt word, if one is close enough."""
    if not isinstance(word, str):
        return None
    by_lower = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


@dataclass(frozen=True)
class Problem:
    """A located error or warning about the spec."""

    message: str
    path: JsonPath = ()
    file: str = ""
    line: int = 1
    col: int = 1
    severity: Severity = "error"
    found: str | None = None
    expected: str | None = None
    hint: str | None = None
    code: str = "invalid"

    @property
    def location(self) -> str:
        """`file:line:col`, the form editors and terminals make clickable."""
        return f"{self.file}:{self.line}:{self.col}"

    def render(self) -> str:
        """The human form: a headline and indented detail lines."""
        lines = [f"{self.location}: {self.severity}: {json_path(self.path)}: {self.message}"]
        for label, text in (("found", self.found), ("expected", self.expected), ("hint", self.hint)):
            if text:
                lines.append(f"    {label}: {text}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        """The machine form used by `collab validate --json`."""
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": json_path(self.path),
            "message": self.message,
            "found": self.found,
            "expected": self.expected,
            "hint": self.hint,
        }


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Order problems as a reader meets them in the file, errors before warnings at one spot."""
    return sorted(problems, key=lambda p: (p.file, p.line, p.col, p.severity != "error", p.message))


class SpecError(ProvisionError, ValueError):
    """The challenge spec could not be loaded; `problems` says every reason at once."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = errors[0].render() if errors else "invalid challenge spec"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)
