"""`collab destroy`: delete the collab's own Hub resources, only with `--confirm <org>/<slug>`.

Without the confirmation it lists what would be deleted and kept, deletes nothing and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.hub import client as hub_client
from provision.plan.destroy import destroy, plan_destroy
from provision.plan.session import prepare


def _destroy(args: argparse.Namespace) -> int:
    hub = hub_client.connect()
    try:
        session = prepare(args.dir, hub)
    except ProvisionError as exc:
        print(f"collab destroy: {exc}", file=sys.stderr)
        return 1
    doomed = plan_destroy(session)
    collab = session.desired.collab
    print(f"Destroy collab {collab}, as {session.identity.user}")
    for item in doomed:
        print(f"  {'- delete' if item.delete else '  keep  '}  {item.kind:<6}  {item.id}  ({item.reason})")
    if not any(d.delete for d in doomed):
        print("Nothing to delete: no resource of this collab exists.")
        return 0
    if args.confirm != collab:
        print(f"\nNothing deleted: confirm with `collab destroy --confirm {collab}`.", file=sys.stderr)
        return 1
    try:
        done = destroy(hub, session.token.reveal(), doomed)
    except ProvisionError as exc:
        print(f"collab destroy: {exc}\n    run `collab destroy` again to finish", file=sys.stderr)
        return 1
    print(f"Deleted {done} resource(s). Agents' scratch buckets belong to their owners and were not touched.")
    return 0


def add_verbs(verbs: Any) -> None:
    """Register `destroy` on the `collab` parser's sub-parsers."""
    verb = verbs.add_parser(
        "destroy",
        help="delete the collab's own buckets and Spaces on the Hub (needs --confirm)",
        description="List the collab's resources on the Hub, then delete those marked as this collab's "
        "(Spaces first, then buckets), only when --confirm names the collab. Unmarked resources and "
        "agents' scratch buckets are never touched. Exit 0 when done or nothing exists, 1 otherwise.",
    )
    verb.add_argument(
        "dir", nargs="?", default=Path("."), type=Path, metavar="DIR", help="the collab folder (default: .)"
    )
    verb.add_argument("--confirm", metavar="ORG/SLUG", help="the collab's name, to confirm the deletion")
    verb.set_defaults(run=_destroy)
