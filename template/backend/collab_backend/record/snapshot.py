"""Snapshots of what a restart would take long to rebuild, so that it does not parse the messages of the index.

Nearly all of a large record is messages, and a restart spent its time splitting their lines,
parsing them and folding them into the lookups the board is served from (by channel, author,
thread, inbox, and each message's position by id). A snapshot holds, as they stood after entry N,
those lookups and where each entry's line starts in the index taken as one stream of bytes (the
segments one after another), behind a header that says what it holds:

    collab-snapshot 4
    {"seq": N, "last": "<sha256 of entry N's index line>", "code": "<fingerprint>", "payload": "<sha256>"}
    {"seq": N, "last_ts": ..., "messages": M, "by_channel": {"keys": [...], "counts": [...]}, ..., "blobs": [...]}
    <the lookups' positions (uint32)><every entry's offset (uint64)><the entries that are no message (uint32)>
    <each message's channel (uint32)><ids>

All integers are little-endian. The payload (`pack`) is a JSON document on one line, then binary
blobs whose sizes it lists: for each lookup, every key's positions one after another (`counts`
says how many each key has); the offsets; the positions of the entries that are no message; each
message's channel, a number into the document's `channel_names`; the ids of the messages in
position order, one per line. A million positions load in a few
milliseconds this way, against a third of a second parsed from JSON.

A restart from it keeps the segments up to entry N whole and places every entry by its offset
(`lines.Stream`), parses only the entries that are no message, and parses everything after N.

It is trusted only when every check holds, and otherwise ignored with a log line (the restart then
replays the whole index, as without a snapshot):

- the header parses and the payload's hash matches (a torn or truncated file fails here);
- `code` matches this backend's: a hash of the record's own source (`state.py`, `entries.py`,
  `lines.py`, `positions.py`, this file), so a snapshot from another version of the code, whose
  state may be folded differently, is never loaded;
- the index holds entry N, each segment up to it starts where the offsets say, and entry N's line
  hashes to `last` (checked by the loader in `store.py`): a snapshot from another record, or ahead
  of its index, fails here;
- the payload is JSON and blobs of the expected shape, the blobs' sizes adding up, the counts
  adding up to the positions, every position within the messages it counts, as many offsets as
  entries, one id and one named channel for each message: it is read as data, nothing in it is
  ever imported or called, whatever the file holds;
- every entry it names as no message is, at its offset, the entry of that number and of another
  kind (`State.load_stream`), none is named twice, and the last message has the id it names
  (`State.adopt`).

A message's line is checked when it is read: a line must start right after a newline where its
offset says, and a message's must end as a message's ends (`"kind":"message"}`, which `encode`
writes last); otherwise the read fails with an error. These checks catch a torn, stale or foreign
file, not one crafted to fit the index with its own hash (which could, say, put one message's
offset where another's is): the snapshot is the backend's own file in the central bucket, written
only with the organizers' token, as the index itself is.

The entries themselves always come from the index, which stays the record. Any failure while a
snapshot is taken in (whatever the file holds) falls back to reading the whole index.

Beside the lookups, a snapshot keeps *parts*: what services draw from the record and keep in
memory, costly to draw again (the rankings the first digest serves). A part (`Part`) is registered
on the record by the service that owns it, with a key: a hash of the code that draws it and the
settings it depends on (`fingerprint`). It is saved as drawn from the entries up to N, and given
back when the restart stands at entry N, before the entries after N are loaded; a part whose key
differs, or whose data the service refuses, is left out with a log line and drawn afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from array import array
from collections.abc import Mapping
from itertools import accumulate, islice, repeat
from pathlib import Path
from typing import Any, Protocol

import orjson

from collab_backend.record import entries
from collab_backend.record.state import State

log = logging.getLogger("collab_backend.record")

PREFIX = ".collab/snapshot/"
MAGIC = b"collab-snapshot 4\n"
KEEP = 2  # snapshots kept: the newest, and the one before in case the newest cannot be read
# What each part of the payload is (a snapshot of another shape is not trusted).
_SHAPE: dict[str, type | tuple[type, ...]] = dict.fromkeys(State.LOOKUPS, dict)
_SHAPE |= {"seq": int, "last_ts": (int, float), "messages": int, "ids": list, "announcements": list, "promoted": list}
_SHAPE |= {"parts": dict, "starts": array, "others": array, "channel_names": list, "message_channels": array}
_POSITION = "I"  # an unsigned int: 32 bits on every platform CPython supports (checked below)
# Where each entry's line starts in the index as one stream, which entries are no message, each message's channel.
_ARRAYS = {"starts": "Q", "others": _POSITION, "message_channels": _POSITION}


class Unusable(Exception):
    """The snapshot cannot be trusted; the message says why."""


class Part(Protocol):
    """What a service draws from the record and keeps in a snapshot, to be given back at the next start."""

    key: str  # `fingerprint` of the code that draws it and the settings it depends on

    def save(self, state: State) -> Any:
        """The part as drawn from the state as it stands, as JSON data (the state does not change meanwhile)."""

    def restore(self, state: State, data: Any) -> None:
        """Take back what `save` gave, the state standing where it stood then.

        Raises ValueError, TypeError or KeyError, changing nothing, if the data does not fit the state.
        """


def fingerprint(*sources: str | Path, settings: str = "") -> str:
    """A hash of source files and settings: what a snapshot's part is valid for."""
    digest = hashlib.sha256(settings.encode())
    for source in sources:
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()


_HERE = Path(__file__).resolve().parent
CODE = fingerprint(
    *(_HERE / name for name in ("state.py", "entries.py", "lines.py", "positions.py", "snapshot.py")),
    settings=MAGIC.decode(),
)


def path_of(seq: int) -> str:
    return f"{PREFIX}{seq:012d}.json"


def seq_of(path: str) -> int | None:
    """The entry a snapshot's file ends at (an older format's `.pickle` too: it is refused, then deleted in turn)."""
    name = path.removeprefix(PREFIX)
    stem, dot, ext = name.partition(".")
    return int(stem) if dot and ext in ("json", "pickle") and len(stem) == 12 and stem.isdigit() else None


def line_hash(line: str | bytes) -> str:
    return hashlib.sha256(line.encode() if isinstance(line, str) else line).hexdigest()


def dump(state: State, parts: Mapping[str, Part] | None = None) -> bytes:
    """The state's lookups and the parts as a snapshot file (call it where nothing changes the state meanwhile).

    A part that fails to save is left out with a log line: the snapshot is still written.
    """
    saved: dict[str, Any] = {}
    for name, part in (parts or {}).items():
        try:
            saved[name] = {"key": part.key, "data": orjson.Fragment(orjson.dumps(part.save(state)))}
        except Exception:  # a part's failure costs that part only
            log.exception("the snapshot at entry %d leaves out %s: it could not be saved", state.seq, name)
    payload = pack(state.lookups() | {"parts": saved})
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
    end = data.find(b"\n", len(MAGIC))  # the payload is read in place: it is tens of megabytes at a million entries
    payload = memoryview(data)[end + 1 :]
    try:
        header = json.loads(data[len(MAGIC) : end]) if end >= 0 else None
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict) or not {"seq", "last", "code", "payload"} <= header.keys():
        raise Unusable("its header is damaged")
    if header["code"] != CODE:
        raise Unusable("it was written by another version of the backend")
    if hashlib.sha256(payload).hexdigest() != header["payload"]:
        raise Unusable("it is incomplete or damaged (its content does not match its hash)")
    lookups = unpack(data, end + 1)
    if (
        not isinstance(lookups, dict)
        or lookups.get("seq") != header["seq"]
        or not all(isinstance(lookups.get(name), kind) for name, kind in _SHAPE.items())
    ):
        raise Unusable("it does not hold the state it claims")
    return lookups, str(header["last"])


def pack(document: dict[str, Any]) -> bytes:
    """A payload: the document on one JSON line, its lookups, offsets and ids moved into binary blobs."""
    document, blobs = dict(document), []
    for name in State.LOOKUPS:
        table: dict[str, array[int]] = document[name]
        positions = array(_POSITION)
        for held in table.values():
            positions.extend(held)
        document[name] = {"keys": list(table), "counts": [len(held) for held in table.values()]}
        blobs.append(_little_endian(positions).tobytes())
    for name, code in _ARRAYS.items():
        blobs.append(_little_endian(array(code, document.pop(name))).tobytes())
    blobs.append("\n".join(document.pop("ids")).encode())
    document["blobs"] = [len(blob) for blob in blobs]
    return orjson.dumps(document) + b"\n" + b"".join(blobs)


def unpack(data: bytes, start: int = 0) -> dict[str, Any]:
    """The document `pack` gave as `data[start:]`, read in place; Unusable if it does not hold one."""
    end = data.find(b"\n", start)  # orjson writes no newline: the first one ends the document
    end = len(data) if end < 0 else end
    view = memoryview(data)
    rest = view[end + 1 :]
    document: Any
    try:
        document = orjson.loads(view[start:end])
    except orjson.JSONDecodeError as exc:  # a payload that passed its hash but does not parse: still never trusted
        raise Unusable(f"it does not parse ({exc})") from None
    sizes = document.get("blobs") if isinstance(document, dict) else None
    seq, messages = (document.get("seq"), document.get("messages")) if isinstance(document, dict) else (None, None)
    if (
        not isinstance(sizes, list)
        or len(sizes) != len(State.LOOKUPS) + len(_ARRAYS) + 1
        or not all(type(size) is int and size >= 0 for size in sizes)
        or sum(sizes) != len(rest)
        or type(seq) is not int
        or type(messages) is not int
    ):
        raise Unusable("it does not hold the state it claims (its blobs are not the sizes it lists)")
    ends = [0, *accumulate(sizes)]
    blobs = [rest[ends[at] : ends[at + 1]] for at in range(len(sizes))]
    for name, blob in zip(State.LOOKUPS, blobs, strict=False):
        document[name] = _table(document.get(name), blob, messages)
    for (name, code), blob in zip(_ARRAYS.items(), blobs[len(State.LOOKUPS) :], strict=False):
        document[name] = _array(code, blob)
    starts, others, channels = (document[name] for name in _ARRAYS)
    if len(starts) != seq or len(others) != seq - messages or len(channels) != messages:
        raise Unusable("it does not hold the state it claims (its offsets do not count its entries and messages)")
    if others and max(others) >= seq:
        raise Unusable("it does not hold the state it claims (an entry past its last)")
    names = document.get("channel_names")
    if not isinstance(names, list) or not all(map(isinstance, names, repeat(str))) or len(set(names)) != len(names):
        raise Unusable("it does not hold the state it claims (the channels' names are not distinct names)")
    if channels and max(channels) >= len(names):
        raise Unusable("it does not hold the state it claims (a message's channel past the channels named)")
    ids = str(blobs[-1], "utf-8", errors="replace")
    document["ids"] = ids.split("\n") if ids else []
    out: dict[str, Any] = document
    return out


def _array(code: str, blob: memoryview) -> array[int]:
    """An array of integers from its blob (stored little-endian)."""
    if len(blob) % array(code).itemsize:
        raise Unusable("it does not hold the state it claims (an array of offsets is cut short)")
    out = array(code)
    out.frombytes(blob)
    return _little_endian(out)


def _table(shape: object, blob: memoryview, messages: int) -> dict[str, array[int]]:
    """One lookup from its keys and counts and its blob of positions."""
    keys = shape.get("keys") if isinstance(shape, dict) else None
    counts = shape.get("counts") if isinstance(shape, dict) else None
    if not isinstance(keys, list) or not isinstance(counts, list) or len(keys) != len(counts):
        raise Unusable("it does not hold the state it claims (a lookup without its keys and counts)")
    positions = _array(_POSITION, blob)
    if positions and max(positions) >= messages:
        raise Unusable("it does not hold the state it claims (a position past its messages)")
    # In C, a lookup of a hundred thousand keys being common (the threads).
    if not all(map(isinstance, keys, repeat(str))) or not all(map(isinstance, counts, repeat(int))):
        raise Unusable("it does not hold the state it claims (a lookup's keys or counts of another kind)")
    if counts and min(counts) < 0:
        raise Unusable("it does not hold the state it claims (a lookup's keys or counts of another kind)")
    ends = [0, *accumulate(counts)]
    if ends[-1] != len(positions):
        raise Unusable("it does not hold the state it claims (a lookup's counts do not add up to its positions)")
    return dict(zip(keys, map(positions.__getitem__, map(slice, ends, islice(ends, 1, None))), strict=True))


def _little_endian(positions: array[int]) -> array[int]:
    """Positions between native and stored order (little-endian): swapped in place on a big-endian machine."""
    if sys.byteorder == "big":
        positions.byteswap()
    return positions


if array(_POSITION).itemsize != 4 or array("Q").itemsize != 8:  # pragma: no cover - no CPython platform has another
    raise ImportError("snapshots store 32- and 64-bit integers; this platform's unsigned int or long long is not")
