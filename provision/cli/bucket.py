"""`collab bucket`: the local collab's bucket folders, with the commands and addresses of `hf buckets`.

The README a local collab seeds tells its participants to run these where the Hub's README says
`hf buckets`. The collab folder comes from `--collab` or `COLLAB_DIR`; the caller is the local
user of `HF_TOKEN`. Exit 0 when done, 1 on any error (printed with what to do).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.local.buckets import LocalBuckets, parse_address, stdio
from provision.local.target import local_target

COLLAB_DIR_ENV = "COLLAB_DIR"


def _run(args: argparse.Namespace) -> int:
    folder = args.collab or os.environ.get(COLLAB_DIR_ENV)
    if not folder:
        print(f"collab bucket: name the collab folder with --collab DIR or {COLLAB_DIR_ENV}", file=sys.stderr)
        return 1
    stdin, stdout = stdio()
    try:
        buckets = LocalBuckets(local_target(Path(folder)), os.environ.get("HF_TOKEN"))
        if args.action == "create":
            said = buckets.create(args.bucket)
        elif args.action == "cp":
            said = buckets.cp(args.source, args.dest, stdin=stdin, stdout=stdout)
        elif args.action == "sync":
            said = buckets.sync(args.source, args.dest)
        elif args.action == "ls":
            said = "\n".join(f"{size:>12}  {path}" for path, size in buckets.listing(parse_address(args.address)))
        else:  # whoami
            said = buckets.user
    except (ProvisionError, OSError) as exc:
        print(f"collab bucket {args.action}: {exc}", file=sys.stderr)
        return 1
    if said:
        print(said, file=sys.stderr if args.action == "cp" and args.dest == "-" else sys.stdout)
    return 0


def add_verbs(verbs: Any) -> None:
    """Add `bucket` and its actions."""
    bucket = verbs.add_parser(
        "bucket",
        help="the local collab's buckets, as `hf buckets` acts on the Hub's (create, cp, sync, ls, whoami)",
        description="Act on the bucket folders of a local collab (.collab/hub/) with the commands and "
        "hf://buckets/<namespace>/<name>/<path> addresses of `hf buckets`, as the local user of HF_TOKEN. "
        "A bucket belongs to the user who created it, and only its owner writes it; the collab's own "
        "buckets (the central bucket) are read-only here. Exit 0 when done, 1 on an error.",
    )
    bucket.add_argument(
        "--collab",
        type=Path,
        metavar="DIR",
        help=f"the collab folder (default: ${COLLAB_DIR_ENV})",
    )
    actions = bucket.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a bucket you own (nothing to do when it is yours already)")
    create.add_argument("bucket", metavar="NAMESPACE/NAME")
    cp = actions.add_parser("cp", help="copy one file into a bucket you own, or out of any bucket ('-': stdin/out)")
    cp.add_argument("source", metavar="SOURCE")
    cp.add_argument("dest", metavar="DEST")
    sync = actions.add_parser("sync", help="copy a folder's files into a bucket folder you own, or out of one")
    sync.add_argument("source", metavar="SOURCE")
    sync.add_argument("dest", metavar="DEST")
    ls = actions.add_parser("ls", help="list a bucket's files (under a path), with their sizes")
    ls.add_argument("address", metavar="hf://buckets/NAMESPACE/NAME[/PATH]")
    actions.add_parser("whoami", help="the local user HF_TOKEN belongs to")
    bucket.set_defaults(run=_run)
