"""The local adapter's writer process, the child's side (`local_writer.py` says why there is one).

It applies each batch it is sent with `LocalStorage.batch` and answers its outcome, until its
parent's pipe closes.

Run as `python -m collab_backend.storage.writer_child ROOT MAX_HASHED_BYTES` by `WriterProcess`.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

from collab_backend.storage.local import LocalStorage
from collab_backend.storage.local_writer import decode_ops, outcome_of, receive, send


def main(argv: list[str]) -> int:
    """Serve batches on stdin, answering on the pipe stdout was at start."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")  # the answers' own pipe: a stray print cannot reach it
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    storage = LocalStorage(Path(argv[0]), max_hashed_bytes=int(argv[1]))
    source = sys.stdin.buffer
    while True:
        message = receive(source)
        if message is None:
            return 0
        bucket, items = message
        send(out, outcome_of(partial(storage.batch, bucket, decode_ops(items))))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
