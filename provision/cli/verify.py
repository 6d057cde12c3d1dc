"""`collab verify sweep`: organizers reconcile verification now, instead of at the backend's next look.

It asks the running backend (`POST /v1/verification/sweep`, an organizer's call) to take in hand
edits of the verification index, record the verdicts of re-runs that ended but were never
recorded, and start the re-runs due (mode `jobs`), and prints what it did and which re-runs are
still in flight. The backend does the same by itself every few seconds; this is for an organizer
who will not wait, or who checks after a restart.

`--target local`: the backend `collab up` runs (`.collab/processes.json`), with the local
organizer's token. `--target hub`: the backend Space (`spaces.backend` of challenge.yaml), with
the organizers' token (HF_TOKEN, the collab's .env, or the Hub's token file). `--url` names
another backend address. Exit 0 when swept, 1 when the backend is unreachable or refuses.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.hub.credentials import find_token
from provision.local.processes import pid_alive, read_processes
from provision.local.target import ORGANIZER, local_target, local_tokens
from provision.naming import space_url
from provision.spec import load_spec

SWEEP_PATH = "/v1/verification/sweep"
TIMEOUT_S = 120.0


class SweepError(ProvisionError):
    """The backend could not be reached, or refused the sweep."""


def _local(args: argparse.Namespace) -> tuple[str, str]:
    target = local_target(args.dir)
    token = local_tokens(target).get(ORGANIZER)
    if token is None:
        raise SweepError("the local identity file has no organizer: run `collab apply --target local`")
    if args.url:
        return args.url, token
    running = [r for r in read_processes(target.collab_dir) if r.name == "backend" and pid_alive(r.pid)]
    if not running:
        raise SweepError("no local backend is running: `collab up` starts one")
    return running[-1].url, token


def _hub(args: argparse.Namespace) -> tuple[str, str]:
    loaded = load_spec(args.dir)
    url = args.url or space_url(loaded.spec.spaces.backend.id)
    return url, find_token(loaded.path.parent).reveal()


def sweep(url: str, token: str) -> dict[str, Any]:
    """POST the sweep to the backend at `url` as the token's user; the backend's answer."""
    request = urllib.request.Request(url.rstrip("/") + SWEEP_PATH, data=b"", method="POST")  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310  # the collab's own backend
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())["error"]
            detail = f"{error['code']}: {error['message']}" + (f" ({error['hint']})" if error.get("hint") else "")
        except (ValueError, KeyError, TypeError):
            detail = f"HTTP {exc.code}"
        raise SweepError(f"the backend at {url} refused the sweep: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SweepError(f"the backend at {url} did not answer: {reason}") from None


def render(url: str, swept: dict[str, Any]) -> str:
    """What the sweep did, in lines."""
    index = swept["index"]
    lines = [f"Verification sweep of {url} (mode {swept['mode']}):"]
    lines.append(f"  index: took in {index['taken_in']} hand edit(s)"
                 + (f"; problem: {index['problem']}" if index["problem"] else ""))  # fmt: skip
    if not swept["reruns"]:
        lines.append("  re-runs: none in this mode (the verifier re-runs in mode jobs, with jobs on)")
        return "\n".join(lines)
    for key, words in (("recorded", "verdict(s) recorded"), ("started", "re-run(s) started"),
                       ("in_flight", "re-run(s) in flight")):  # fmt: skip
        items = swept[key]
        lines.append(f"  {len(items)} {words}" + (f": {', '.join(items)}" if items else ""))
    return "\n".join(lines)


def _sweep(args: argparse.Namespace) -> int:
    try:
        url, token = _local(args) if args.target == "local" else _hub(args)
        swept = sweep(url, token)
    except ProvisionError as exc:
        print(f"collab verify sweep: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(swept, indent=2) if args.json else render(url, swept))
    return 0


def add_verbs(verbs: Any) -> None:
    """Register `verify sweep` on the `collab` parser's sub-parsers."""
    verify = verbs.add_parser(
        "verify",
        help="organizers: verification on the running backend",
        description="Organizers' verification commands against the collab's running backend.",
    )
    actions = verify.add_subparsers(dest="action", required=True, metavar="ACTION")
    swept = actions.add_parser(
        "sweep",
        help="take in index edits, record verdicts never recorded, start the re-runs due; list those in flight",
        description="Ask the running backend to reconcile verification now (POST /v1/verification/sweep, an "
        "organizer's call): take in hand edits of the verification index, record the verdicts of ended "
        "re-runs, start the re-runs due (mode jobs), and list the re-runs in flight. Exit 0 when swept, "
        "1 when the backend is unreachable or refuses.",
    )
    swept.add_argument(
        "dir",
        nargs="?",
        default=Path("."),
        type=Path,
        metavar="DIR",
        help="the collab folder (default: the current folder)",
    )
    swept.add_argument(
        "--target",
        choices=("hub", "local"),
        default="hub",
        help="the backend Space (hub, the default) or the backend `collab up` runs (local)",
    )
    swept.add_argument("--url", help="the backend's address, instead of the target's own")
    swept.add_argument("--json", action="store_true", help="print the backend's answer as JSON")
    swept.set_defaults(run=_sweep)
