"""The `collab plan | apply | status` verbs: parse, call the library, print, choose the exit code.

Exit codes: plan 0 in sync, 2 changes pending, 1 error or blocked; apply 0 done, 1 error;
status 0 healthy and in sync, 2 drift or unhealthy, 1 error. Errors print without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.hub import client as hub_client
from provision.hub.client import HubClient
from provision.plan.apply import WaitPolicy, apply_plan
from provision.plan.session import Session, prepare
from provision.plan.views import healthy, plan_json, render_plan_text, render_status_text, status_json


def _prepare(args: argparse.Namespace, hub: HubClient) -> Session | None:
    try:
        return prepare(args.dir, hub, adopt=args.adopt, overwrite_readme=getattr(args, "overwrite_readme", False))
    except ProvisionError as exc:
        print(f"collab {args.verb}: {exc}", file=sys.stderr)
        return None


def _plan(args: argparse.Namespace) -> int:
    session = _prepare(args, hub_client.connect())
    if session is None:
        return 1
    plan = session.plan
    if args.json:
        print(json.dumps(plan_json(plan), indent=2))
    else:
        print(render_plan_text(plan, token_source=session.token.source))
    if plan.blockers:
        return 1
    return 0 if plan.in_sync else 2


def _apply(args: argparse.Namespace) -> int:
    hub = hub_client.connect()
    session = _prepare(args, hub)
    if session is None:
        return 1
    plan = session.plan
    print(render_plan_text(plan, token_source=session.token.source))
    if plan.blockers:
        return 1
    if plan.in_sync:
        return 0
    print("\nApplying:")
    try:
        made = apply_plan(
            hub,
            session.token.reveal(),
            plan,
            session.desired,
            wait=WaitPolicy(timeout=args.timeout, interval=args.poll_interval),
            progress=print,
        )
    except ProvisionError as exc:
        print(f"collab apply: {exc}", file=sys.stderr)
        return 1
    after = _prepare(args, hub)  # read back again: apply is done only when a fresh plan is empty
    if after is None:
        return 1
    if not after.plan.in_sync:
        print(f"\nApplied {made} change(s), but a fresh plan still shows changes:", file=sys.stderr)
        print(render_plan_text(after.plan, token_source=after.token.source), file=sys.stderr)
        return 1
    print(f"\nApplied {made} change(s); a fresh plan shows no changes.")
    return 0


def _status(args: argparse.Namespace) -> int:
    session = _prepare(args, hub_client.connect())
    if session is None:
        return 1
    if args.json:
        print(json.dumps(status_json(session.plan, session.observed), indent=2))
    else:
        print(render_status_text(session.plan, session.observed))
    return 0 if healthy(session.plan, session.observed) else 2


def add_verbs(verbs: Any) -> None:
    """Register plan, apply and status on the `collab` parser's sub-parsers."""
    specs = [
        (
            "plan",
            _plan,
            "read the collab's resources on the Hub and show the changes still needed",
            "Read back the live state of every resource of the collab (token identity, org roles and the "
            "token's permissions, buckets, Spaces: settings, variables, secret names, code, stage, the seed "
            "files, and with jobs on the Jobs settings) and show the actions that would bring it to "
            "challenge.yaml. Exit 0 when in sync, 2 when changes are pending, 1 on an error or a blocker.",
        ),
        (
            "apply",
            _apply,
            "make the changes `collab plan` shows, then wait for the Spaces to run",
            "Compute the plan, print it, and make exactly its changes in dependency order, with progress. "
            "Idempotent: run it again after a failure to finish. Exit 0 when done or in sync, 1 on an error.",
        ),
        (
            "status",
            _status,
            "show the health and drift of every resource",
            "Show every resource's health (existence, visibility, Space stage and hardware) and its drift "
            "from challenge.yaml. Exit 0 when healthy and in sync, 2 otherwise, 1 on an error.",
        ),
    ]
    for name, run, help_text, description in specs:
        verb = verbs.add_parser(name, help=help_text, description=description)
        verb.add_argument(
            "dir", nargs="?", default=Path("."), type=Path, metavar="DIR", help="the collab folder (default: .)"
        )
        if name != "apply":
            verb.add_argument("--json", action="store_true", help="print JSON (format_version 1)")
        verb.add_argument(
            "--adopt", action="store_true", help="take over existing resources that carry no ownership mark"
        )
        if name in ("plan", "apply"):
            verb.add_argument(
                "--overwrite-readme",
                action="store_true",
                help="replace the organizers' edits of the central bucket's README.md with the generated one "
                "(without it, an edited README is kept and the plan shows the diff)",
            )
        if name == "apply":
            verb.add_argument(
                "--timeout",
                type=float,
                default=900.0,
                metavar="SECONDS",
                help="how long to wait for each Space to run (default: 900)",
            )
            verb.add_argument(
                "--poll-interval",
                type=float,
                default=5.0,
                metavar="SECONDS",
                help="time between two reads of a Space's stage (default: 5)",
            )
        verb.set_defaults(run=run)
