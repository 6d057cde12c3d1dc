"""The local target on the command line: `collab up`, and `--target local` for plan, apply and status.

`add_verbs` runs after the Hub verbs are registered: it adds `up`, and gives `plan`, `apply` and
`status` a `--target {hub,local}` option that sends `local` here and leaves `hub` to the Hub verbs.
Exit codes as for the Hub target: plan 0 in sync, 2 changes pending, 1 error or blocked; apply
0 done, 1 error; status 0 healthy and in sync, 2 drift or unhealthy (a stale or unanswering
backend included), 1 error; up 0 after a clean stop (Ctrl-C or SIGTERM), 1 when it cannot start
or a server dies.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from provision.errors import ProvisionError
from provision.local.processes import LocalCollab, bring_up, urls
from provision.local.status import local_status, local_status_json, render_local_status
from provision.local.target import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    IDENTITY_FILE,
    LocalTarget,
    apply_local,
    local_plan_json,
    local_target,
    plan_local,
)
from provision.local.target import render_local_plan as render


def _target(args: argparse.Namespace) -> LocalTarget | None:
    try:
        return local_target(args.dir)
    except ProvisionError as exc:
        print(f"collab {args.verb}: {exc}", file=sys.stderr)
        return None


def _plan(args: argparse.Namespace) -> int:
    target = _target(args)
    if target is None:
        return 1
    try:
        plan = plan_local(target, adopt=args.adopt, overwrite_readme=getattr(args, "overwrite_readme", False))
    except ProvisionError as exc:
        print(f"collab plan: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(local_plan_json(plan), indent=2) if args.json else render(plan))
    if plan.blockers:
        return 1
    return 0 if plan.in_sync else 2


def _apply(args: argparse.Namespace) -> int:
    target = _target(args)
    if target is None:
        return 1
    try:
        plan = plan_local(target, adopt=args.adopt, overwrite_readme=getattr(args, "overwrite_readme", False))
        print(render(plan))
        if plan.blockers:
            return 1
        if plan.in_sync:
            return 0
        print("\nApplying:")
        made = apply_local(target, plan)
        after = plan_local(target, adopt=args.adopt, overwrite_readme=getattr(args, "overwrite_readme", False))
    except ProvisionError as exc:
        print(f"collab apply: {exc}", file=sys.stderr)
        return 1
    if not after.in_sync:
        print(f"\nApplied {made} change(s), but a fresh plan still shows changes:\n{render(after)}", file=sys.stderr)
        return 1
    print(f"\nApplied {made} change(s); a fresh plan shows no changes.")
    return 0


def _status(args: argparse.Namespace) -> int:
    target = _target(args)
    if target is None:
        return 1
    try:
        status = local_status(target, adopt=args.adopt)
    except ProvisionError as exc:
        print(f"collab status: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(local_status_json(status), indent=2) if args.json else render_local_status(status))
    return 0 if status.healthy else 2


class _Stop(Exception):
    """SIGINT or SIGTERM arrived: stop the backend and exit 0."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _up(args: argparse.Namespace) -> int:
    target = _target(args)
    if target is None:
        return 1

    def say(line: str) -> None:
        print(line, flush=True)

    collab: LocalCollab | None = None
    # Installed explicitly: a shell starting `collab up` in the background ignores SIGINT for it.
    previous = {sig: signal.signal(sig, _on_signal) for sig in _STOP_SIGNALS}
    try:
        say(f"Bringing up {target.desired.collab} on this machine (local target: {target.collab_dir.name}/.collab/)")
        collab = bring_up(target, host=args.host, port=args.port, dashboard_port=_dashboard_port(args),
                          eval_port=args.eval_port, progress=say)  # fmt: skip
        for server in collab.servers:
            say(f"{server.name.capitalize()} running at {server.url} (pid {server.pid}; log {server.log})")
        width = max(len(name) for name, _ in urls(collab))
        for name, url in urls(collab):
            say(f"  {name.ljust(width)}  {url}")
        say(f"Local tokens for the organizer and {target.participants} participants: {IDENTITY_FILE} (keep it private)")
        say("Press Ctrl-C to stop.")
        while (gone := collab.stopped()) is None:
            time.sleep(0.2)
        print(f"collab up: the {gone.name} stopped by itself; its log ends with:\n{gone.tail()}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Stop):
        return 0
    except ProvisionError as exc:
        print(f"collab up: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in _STOP_SIGNALS:  # a second Ctrl-C does not cut the shutdown short
            signal.signal(sig, signal.SIG_IGN)
        if collab is not None:
            running = any(server.running() for server in collab.servers)
            if running:
                say("")
            codes = collab.stop(progress=say)  # a server that exited by itself: only its record is left to remove
            if running:
                say("Stopped (" + ", ".join(f"{name}: exit {code}" for name, code in codes.items()) + ").")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dashboard_port(args: argparse.Namespace) -> int | None:
    if args.no_dashboard:
        return None
    return int(args.port) + 1 if args.dashboard_port is None else int(args.dashboard_port)


def add_verbs(verbs: Any) -> None:
    """Add `up`, and `--target` to the already registered `plan`, `apply` and `status`."""
    for name, local_run in (("plan", _plan), ("apply", _apply), ("status", _status)):
        parser = verbs.choices[name]
        hub_run = parser.get_default("run")
        parser.add_argument(
            "--target",
            choices=("hub", "local"),
            default="hub",
            help="hub: the org's resources on the Hub (default); local: the folder hub in .collab/ "
            "and the local identity file, for `collab up`"
            + ("; status also checks the backend and dashboard `collab up` runs" if name == "status" else ""),
        )
        parser.set_defaults(run=_by_target(hub_run, local_run))
    up = verbs.add_parser(
        "up",
        help="run the collab on this machine: apply the local target, start the backend and the dashboard, "
        "print the URLs",
        description="Apply the local target (bucket folders in .collab/hub/, the local identity file), start "
        "the backend as a local process over it and the dashboard over the backend (people sign in with a "
        "token of the local identity file), in verification mode eval-space the eval service too (the "
        "type's cheap check over pending results, as the local organizer), wait until each answers, and "
        "print their URLs. The running "
        "servers are recorded in .collab/processes.json for `collab status --target local`. Runs until "
        "Ctrl-C or SIGTERM, then stops them by PID (the dashboard first), removes their records and exits 0; "
        "exit 1 when one cannot start (a port in use, missing requirements) or when one dies.",
    )
    up.add_argument(
        "dir", nargs="?", default=Path("."), type=Path, metavar="DIR", help="the collab folder (default: .)"
    )
    up.add_argument("--host", default=DEFAULT_HOST, help=f"the address to listen on (default: {DEFAULT_HOST})")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the backend's port (default: {DEFAULT_PORT})")
    up.add_argument(
        "--dashboard-port", type=int, default=None, metavar="N", help="the dashboard's port (default: --port + 1)"
    )
    up.add_argument("--no-dashboard", action="store_true", help="run the backend alone")
    up.add_argument(
        "--eval-port",
        type=int,
        default=None,
        metavar="N",
        help="verification mode eval-space: the eval service's port (default: the next port free of the other two)",
    )
    up.set_defaults(run=_up)


def _by_target(hub_run: Any, local_run: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        code: int = (local_run if args.target == "local" else hub_run)(args)
        return code

    return run
