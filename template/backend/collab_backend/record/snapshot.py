"""Snapshots of the board's lookups, so that a restart does not rebuild them from the index.

A restart reads every entry from the index, and a large part of its time went into folding the
messages into the lookups the board is served from (by channel, author, thread, inbox...). A
snapshot holds those lookups as they stood after entry N: plain lists and dicts (positions into
the list of messages), one pickle behind a header that says what it holds:

    collab-snapshot 1
    {"seq": N, "last": "<sha256 of entry N's index line>", "code": "<fingerprint>", "payload": "<sha256>"}
    <the pickle>

It is trusted only when every check holds, and otherwise ignored with a log line (the restart then
replays the whole index, as without a snapshot):

- the header parses and the payload's hash matches (a torn or truncated file fails here);
- `code` matches this backend's: a hash of the record's own source (`state.py`, `entries.py`,
  this file), the Python version and the pickle protocol, so a snapshot from another version of
  the code, whose state may be folded differently, is never loaded;
- the index holds entry N and its line hashes to `last` (checked by the loader in `store.py`):
  a snapshot from another record, or ahead of its index, fails here;
- the messages read from the index up to entry N are as many as the lookups index, and the last
  of them has the id the snapshot names (`State.adopt`);
- the pickle names no class but `defaultdict`, `list` and `dict` (`Restricted`): nothing else is
  ever imported or called while loading, whatever the file holds.

The entries themselves always come from the index, which stays the record.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from collab_backend.record import entries
from collab_backend.record.state import State

PREFIX = ".collab/snapshot/"
MAGIC = b"collab-snapshot 1\n"
PROTOCOL = 5
KEEP = 2  # snapshots kept: the newest, and the one before in case the newest cannot be read
_ALLOWED = {("collections", "defaultdict"): defaultdict, ("builtins", "list"): list, ("builtins", "dict"): dict}


class Unusable(Exception):
    """The snapshot cannot be trusted; the message says why."""


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{sys.version_info[:3]} pickle {PROTOCOL}".encode())
    here = Path(__file__).resolve().parent
    for name in ("state.py", "entries.py", "snapshot.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


CODE = _fingerprint()


def path_of(seq: int) -> str:
    return f"{PREFIX}{seq:012d}.pickle"


def seq_of(path: str) -> int | None:
    name = path.removeprefix(PREFIX)
    stem, dot, ext = name.partition(".")
    return int(stem) if dot and ext == "pickle" and len(stem) == 12 and stem.isdigit() else None


def line_hash(line: str | bytes) -> str:
    return hashlib.sha256(line.encode() if isinstance(line, str) else line).hexdigest()


def dump(state: State) -> bytes:
    """The state's lookups as a snapshot file (call it where nothing changes the state meanwhile)."""
    payload = pickle.dumps(state.lookups(), protocol=PROTOCOL)
    header = {
        "seq": state.seq,
        "last": line_hash(entries.encode(state.log[-1])) if state.log else "",
        "code": CODE,
        "payload": hashlib.sha256(payload).hexdigest(),
    }
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


class Restricted(pickle.Unpickler):
    """An unpickler that knows the record's classes and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise Unusable(f"the snapshot names {module}.{name}, which a snapshot never holds")
        return found


def load(data: bytes) -> tuple[dict[str, Any], str]:
    """The lookups a snapshot holds, and the hash of its last entry's index line; Unusable if any check fails."""
    if not data.startswith(MAGIC):
        raise Unusable("it is not a snapshot of this format")
    header_line, newline, payload = data[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(header_line) if newline else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or not {"seq", "last", "code", "payload"} <= header.keys():
        raise Unusable("its header is damaged")
    if header["code"] != CODE:
        raise Unusable("it was written by another version of the backend")
    if hashlib.sha256(payload).hexdigest() != header["payload"]:
        raise Unusable("it is incomplete or damaged (its content does not match its hash)")
    try:
        lookups = Restricted(io.BytesIO(payload)).load()
    except Unusable:
        raise
    except Exception as exc:  # a pickle that passed its hash but does not load: still never trusted
        raise Unusable(f"it does not load ({type(exc).__name__})") from None
    if not isinstance(lookups, dict) or lookups.get("seq") != header["seq"] or not lookups.keys() >= State.LOOKUPS:
        raise Unusable("it does not hold the state it claims")
    return lookups, str(header["last"])
