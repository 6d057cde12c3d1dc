"""The byte-level toy tokenizer of the CPU stand-in engines and the public sample.

Gemma's real tokenizer needs a download, so the sample set and the CPU engines share this one:
ids 0-15 are special tokens laid out like Gemma's (pad 0, eos 1, bos 2), byte b is id 16 + b,
and ids up to `VOCAB_SIZE` exist but never decode to text, like the rare tokens of a real
vocabulary. The chat layout mirrors Gemma's turn markers so prompt construction has the same
shape as the real thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

NAME = "toy-bytes-v1"
VOCAB_SIZE = 512
PAD, EOS, BOS, UNK, START_OF_TURN, END_OF_TURN = 0, 1, 2, 3, 4, 5
BYTE_OFFSET = 16
STOP_TOKEN_IDS = (EOS, END_OF_TURN)
_ROLES = {"user": "user", "assistant": "model", "model": "model", "system": "system"}


def encode(text: str) -> list[int]:
    """The ids of `text`'s UTF-8 bytes, without special tokens."""
    return [BYTE_OFFSET + b for b in text.encode("utf-8")]


def decode(ids: Iterable[int]) -> str:
    """Text of the byte ids; special and out-of-byte-range ids are dropped, invalid UTF-8 replaced."""
    data = bytes(i - BYTE_OFFSET for i in ids if BYTE_OFFSET <= i < BYTE_OFFSET + 256)
    return data.decode("utf-8", errors="replace")


def chat_prompt(messages: Sequence[Mapping[str, str]]) -> list[int]:
    """Ids of a chat ending in an open model turn: bos, then `<turn>role NL text<end> NL` per message.

    Raises:
        ValueError: A message has an unknown role or no text.
    """
    ids = [BOS]
    for message in messages:
        role = _ROLES.get(message.get("role", ""))
        content = message.get("content")
        if role is None or not isinstance(content, str):
            raise ValueError(f"a message needs a role in {sorted(_ROLES)} and text content: {dict(message)!r}")
        ids += [START_OF_TURN, *encode(f"{role}\n{content}"), END_OF_TURN, *encode("\n")]
    return [*ids, START_OF_TURN, *encode("model\n")]
