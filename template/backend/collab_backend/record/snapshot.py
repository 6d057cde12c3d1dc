"""Snapshots of the board's lookups, so that a restart does not parse the messages of the index.

Nearly all of a large record is messages, and a restart spent its time parsing their lines and
folding them into the lookups the board is served from (by channel, author, thread, inbox, and
each message's position by id). A snapshot holds those lookups as they stood after entry N, as
one JSON document behind a header that says what it holds:

    collab-snapshot 2
    {"seq": N, "last": "<sha256 of entry N's index line>", "code": "<fingerprint>", "payload": "<sha256>"}
    {"seq": N, "last_ts": ..., "messages": M, "ids": [...], "by_channel": {...}, ...}

A restart from it keeps the messages up to entry N as their index lines, unparsed (`lines.py`),
parses only the other entries up to N, and parses everything after N.

It is trusted only when every check holds, and otherwise ignored with a log line (the restart then
replays the whole index, as without a snapshot):

- the header parses and the payload's hash matches (a torn or truncated file fails here);
- `code` matches this backend's: a hash of the record's own source (`state.py`, `entries.py`,
  `lines.py`, this file), so a snapshot from another version of the code, whose state may be
  folded differently, is never loaded;
- the index holds entry N and its line hashes to `last` (checked by the loader in `store.py`):
  a snapshot from another record, or ahead of its index, fails here;
- the payload is JSON of the expected shape: it is parsed as data, nothing in it is ever
  imported or called, whatever the file holds;
- the index's lines up to entry N are where the segments' names put them, hold the messages the
  snapshot counts (a message's line ends with its kind, which `encode` writes last), and the last
  of those messages has the id the snapshot names (`State.adopt`).

The entries themselves always come from the index, which stays the record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import orjson

from collab_backend.record import entries
from collab_backend.record.state import State

PREFIX = ".collab/snapshot/"
MAGIC = b"collab-snapshot 2\n"
KEEP = 2  # snapshots kept: the newest, and the one before in case the newest cannot be read
# What each part of the payload is (a snapshot of another shape is not trusted).
_SHAPE: dict[str, type | tuple[type, ...]] = dict.fromkeys(State.LOOKUPS, dict)
_SHAPE |= {"seq": int, "last_ts": (int, float), "messages": int, "ids": list, "announcements": list, "promoted": list}


class Unusable(Exception):
    """The snapshot cannot be trusted; the message says why."""


def _fingerprint() -> str:
    digest = hashlib.sha256(MAGIC)
    here = Path(__file__).resolve().parent
    for name in ("state.py", "entries.py", "lines.py", "snapshot.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


CODE = _fingerprint()


def path_of(seq: int) -> str:
    return f"{PREFIX}{seq:012d}.json"


def seq_of(path: str) -> int | None:
    """The entry a snapshot's file ends at (an older format's `.pickle` too: it is refused, then deleted in turn)."""
    name = path.removeprefix(PREFIX)
    stem, dot, ext = name.partition(".")
    return int(stem) if dot and ext in ("json", "pickle") and len(stem) == 12 and stem.isdigit() else None


def line_hash(line: str | bytes) -> str:
    return hashlib.sha256(line.encode() if isinstance(line, str) else line).hexdigest()


def dump(state: State) -> bytes:
    """The state's lookups as a snapshot file (call it where nothing changes the state meanwhile)."""
    payload = orjson.dumps(state.lookups())
    header = {
        "seq": state.seq,
        "last": line_hash(entries.encode(state.log[-1])) if state.log else "",
        "code": CODE,
        "payload": hashlib.sha256(payload).hexdigest(),
    }
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


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
        lookups = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:  # a payload that passed its hash but does not parse: still never trusted
        raise Unusable(f"it does not parse ({exc})") from None
    if (
        not isinstance(lookups, dict)
        or lookups.get("seq") != header["seq"]
        or not all(isinstance(lookups.get(name), kind) for name, kind in _SHAPE.items())
    ):
        raise Unusable("it does not hold the state it claims")
    return lookups, str(header["last"])
