"""`collab`: the thin command line in front of the provisioning library.

Each verb parses its arguments, calls one library function and turns the outcome into output
and an exit code: 0 success, 1 a problem the user must fix (printed without a traceback). This
module holds the parser and the spec verbs; `deploy` adds plan, apply and status on the Hub,
`local` the local target and `up`, `destroy` the teardown; `reference` writes docs/cli.md from
the parser. The top layer: it may import every room of the library, and none imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from provision import __version__, migrations
from provision.challenge_types.scaffold import next_steps, scaffold_type
from provision.cli import bucket as cli_bucket
from provision.cli import check as cli_check
from provision.cli import deploy as cli_deploy
from provision.cli import destroy as cli_destroy
from provision.cli import local as cli_local
from provision.cli import verify as cli_verify
from provision.errors import ProvisionError
from provision.paths import spec_path
from provision.spec import check_spec


def _validate(args: argparse.Namespace) -> int:
    loaded, problems = check_spec(args.dir)
    errors = [p for p in problems if p.severity == "error"]
    if args.json:
        print(
            json.dumps(
                {"format_version": 1, "valid": loaded is not None, "problems": [p.as_json() for p in problems]},
                indent=2,
            )
        )
        return 0 if loaded else 1
    for problem in problems:
        print(problem.render())
    warnings = len(problems) - len(errors)
    if loaded is None:
        print(f"\n{spec_path(args.dir)}: {len(errors)} error(s), {warnings} warning(s)")
        return 1
    spec = loaded.spec
    print(
        f"{loaded.path}: valid ({spec.challenge.type} challenge '{spec.challenge.slug}' in org "
        f"{spec.challenge.org}, verification {spec.verification.mode}, "
        f"jobs {'on' if spec.jobs.enabled else 'off'}; {warnings} warning(s))"
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    path = spec_path(args.dir)
    try:
        report = migrations.migrate_file(path, check=args.check)
    except migrations.MigrationError as exc:
        print(f"{path}: cannot migrate: {exc}", file=sys.stderr)
        return 1
    print(migrations.describe(path, report, check=args.check))
    return 2 if args.check and report.changed else 0


def _new_type(args: argparse.Namespace) -> int:
    try:
        made = scaffold_type(args.name, args.dest, args.title)
    except ProvisionError as exc:
        print(f"collab new-type: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {made.package_dir} ({len(made.files)} files), a complete type with a stand-in task.")
    print(next_steps(made))
    return 0


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        nargs="?",
        default=".",
        type=Path,
        metavar="DIR",
        help="a collab folder or a spec file (default: the current folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; docs/cli.md is generated from its help."""
    parser = argparse.ArgumentParser(prog="collab", description="Launch, run and upgrade an agent collab.")
    parser.add_argument("--version", action="version", version=f"collab {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    validate = verbs.add_parser(
        "validate",
        help="check challenge.yaml and report every problem at once",
        description="Check a collab's challenge.yaml against the schema and the cross-field "
        "rules. Exit 0 when valid (warnings allowed), 1 on errors.",
    )
    _add_dir(validate)
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")
    validate.set_defaults(run=_validate)

    migrate = verbs.add_parser(
        "migrate",
        help="rewrite challenge.yaml in the current spec format",
        description="Apply spec migrations to challenge.yaml in place, keeping comments. "
        "Exit 0 when done or nothing to do; with --check, 2 when changes are due.",
    )
    _add_dir(migrate)
    migrate.add_argument("--check", action="store_true", help="only report what would change")
    migrate.set_defaults(run=_migrate)

    new_type = verbs.add_parser(
        "new-type",
        help="write a new challenge type package from the skeleton",
        description="Write challenge_NAME/, a complete challenge type with a stand-in task that passes "
        "the conformance suite, into the template repository; then print the steps that register it. "
        "Exit 0 when written, 1 when the name is taken or invalid.",
    )
    new_type.add_argument("name", metavar="NAME", help="the type's name: lowercase letters, digits and '_'")
    new_type.add_argument(
        "--dest",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the template repository's root (default: the current folder)",
    )
    new_type.add_argument("--title", help="the type's title (default: '<Name> challenge')")
    new_type.set_defaults(run=_new_type)
    cli_deploy.add_verbs(verbs)
    cli_local.add_verbs(verbs)
    cli_destroy.add_verbs(verbs)
    cli_bucket.add_verbs(verbs)
    cli_check.add_verbs(verbs)
    cli_verify.add_verbs(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `collab` command; a problem the library names is printed, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ProvisionError as exc:  # e.g. a bad Hub timeout setting, read before a verb's own handling
        print(f"collab {args.verb}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
