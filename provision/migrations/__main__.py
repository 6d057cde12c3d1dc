"""`python -m provision.migrations [FILE] [--check]`: the command copier.yml's `_migrations` runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provision.migrations import MigrationError, describe, migrate_file


def main(argv: list[str] | None = None) -> int:
    """Migrate one spec file; exit 1 with a message (no traceback) when it cannot be done."""
    parser = argparse.ArgumentParser(prog="python -m provision.migrations", description=__doc__)
    parser.add_argument("file", nargs="?", default="challenge.yaml", type=Path)
    parser.add_argument("--check", action="store_true", help="report what would change; exit 2 if anything would")
    args = parser.parse_args(argv)
    try:
        report = migrate_file(args.file, check=args.check)
    except MigrationError as exc:
        print(f"{args.file}: cannot migrate: {exc}", file=sys.stderr)
        return 1
    print(describe(args.file, report, check=args.check))
    return 2 if args.check and report.changed else 0


if __name__ == "__main__":
    sys.exit(main())
