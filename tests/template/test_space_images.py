"""Each Space's image compiles the code it copies: the Space's user cannot write bytecode beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("space", ["backend", "dashboard", "eval"])
def test_the_image_compiles_what_it_copies_before_it_drops_root(space: str) -> None:
    dockerfile = (ROOT / "template" / space / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.split() for line in dockerfile.splitlines()]
    instructions = [words for words in lines if words and not words[0].startswith("#")]
    [code] = [i for i, words in enumerate(instructions) if words[0] == "COPY" and words[1] != "requirements.txt"]
    [user] = [i for i, words in enumerate(instructions) if words[0] == "USER"]
    [compile_at] = [i for i, words in enumerate(instructions) if words[:4] == ["RUN", "python", "-m", "compileall"]]
    copied = instructions[code][1]
    assert code < compile_at < user, "compiled after the code is copied and while root can still write there"
    assert instructions[compile_at][-1] == copied, f"it compiles what it copied ({copied})"
