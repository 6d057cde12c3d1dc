"""Generate docs/cli.md from the `collab` argument parser, so the docs cannot drift from --help."""

from __future__ import annotations

import argparse
import os
from unittest import mock

from provision.cli import build_parser

HEADER = """\
# `collab` command reference

Generated from the command's own `--help` by `nox -s docs`; do not edit by hand.
"""


def render_cli_reference() -> str:
    """Every verb's help text as Markdown."""
    with mock.patch.dict(os.environ, {"COLUMNS": "100"}):  # argparse wraps to the terminal's width
        return _render(build_parser())


def _render(parser: argparse.ArgumentParser) -> str:
    out = [HEADER, "```text", parser.format_help().rstrip(), "```"]
    for action in parser._actions:  # argparse exposes sub-parsers only through this attribute
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += ["", f"## `collab {name}`", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(out) + "\n"


def main() -> None:
    """Print the reference (the docs session redirects it into docs/cli.md)."""
    print(render_cli_reference(), end="")


if __name__ == "__main__":
    main()
