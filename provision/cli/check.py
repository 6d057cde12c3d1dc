"""`collab check-readme`: the onboarding check, on the README a collab's seed writes or on an edited one.

Exit 0 when the README has no problem, 1 when it has (each printed with its line), or on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.onboarding.check import api_routes, check_readme
from provision.onboarding.readme import VERIFICATION_INDEX
from provision.paths import spec_path
from provision.plan.desired import IGNORED_SOURCES
from provision.plan.seed import README_PATH, desired_seed
from provision.spec import load_spec


def _run(args: argparse.Namespace) -> int:
    try:
        loaded = load_spec(args.dir)
        seed = desired_seed(loaded, IGNORED_SOURCES)
        backend = spec_path(args.dir).parent / "backend"
        if not (backend / "collab_backend" / "routes").is_dir():
            raise ProvisionError(f"no backend/ in {backend.parent}: the check reads the API from its routes")
        text = Path(args.file).read_text(encoding="utf-8") if args.file else seed.readme
    except (ProvisionError, OSError, UnicodeDecodeError) as exc:
        print(f"collab check-readme: {exc}", file=sys.stderr)
        return 1
    scoring = loaded.spec.scoring
    problems = check_readme(
        text,
        routes=api_routes(backend),
        files=[README_PATH, VERIFICATION_INDEX, *seed.harness],
        required_fields=scoring.required_fields,
        score_field=scoring.score_field,
    )
    what = args.file or f"the README the seed writes ({README_PATH} of {seed.bucket_id})"
    for problem in problems:
        print(f"{what}: {problem}")
    print(f"{len(problems)} problem(s) in {what}." if problems else f"No problem found in {what}.")
    return 1 if problems else 0


def add_verbs(verbs: Any) -> None:
    """Add `check-readme`."""
    check = verbs.add_parser(
        "check-readme",
        help="check the onboarding README: links, examples, endpoints, placeholders, result fields",
        description="Check the README the seed writes into the central bucket (or --file, an edited copy): "
        "relative links to files the bucket is not seeded with, fenced examples that do not parse, "
        "endpoints the backend's routes do not have, unfilled placeholders and leftover comments, and "
        "result examples without a field the spec requires. Exit 0 when none is found, 1 otherwise.",
    )
    check.add_argument(
        "dir", nargs="?", default=Path("."), type=Path, metavar="DIR", help="the collab folder (default: .)"
    )
    check.add_argument("--file", type=Path, metavar="README", help="check this file instead of the generated README")
    check.set_defaults(run=_run)
