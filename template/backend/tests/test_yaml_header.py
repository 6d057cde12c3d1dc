"""The frontmatter writer's own path for the headers it knows writes exactly what PyYAML writes,
and PyYAML reads it back as the same fields; anything else goes to PyYAML."""

from __future__ import annotations

import string
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import _DUMPER, MessageEntry, _known_header, iso, yaml_header

# Texts near the edges of what is written plain: words YAML reads as booleans or null, numbers,
# dates, timestamps, ids, and text with characters that need quoting.
EDGES = [
    "yes", "No", "TRUE", "off", "On", "null", "Null", "~", "", "y", "n", "e10", "1e10", "0x1F", "0o17", "012",
    "1_000", "12:30", "1:20:30", ".inf", ".nan", "-", "--", "- x", "a: b", "a #b", "#a", "!tag", "&a", "*a", "@a",
    "2026-12-07", "2026-12-07T01:02:03.456Z", "2026-12-07 01:02:03", "1765000000123-00000005", "12345-6", "1234-5-6",
    "r1765000000123-00000005", "speedy", "human-alice", "_system", "acme/fast-speedy", "a.b-c_d/e", "x" * 150,
    "ünïcode", "tab\there", "line\nbreak", "'quoted'", '"dq"', "a ", " a", "[x]", "{x}", "%x", "`x", "|", ">",
]  # fmt: skip
scalars = st.one_of(
    st.sampled_from(EDGES),
    st.text(alphabet=string.ascii_letters + string.digits + "_./-:# '\"", max_size=30),
    st.text(max_size=10),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
)
keys = st.one_of(st.sampled_from(EDGES), st.text(alphabet=string.ascii_letters + string.digits + "_-.", max_size=110))
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(keys, scalars, max_size=3),
    st.lists(st.lists(scalars, max_size=2), max_size=2),
)

# Mostly what the known path takes, to hold it to PyYAML where it answers (the strategies above
# mostly reach PyYAML's own path).
near_texts = st.one_of(
    st.sampled_from(EDGES),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_./-]{0,40}", fullmatch=True),
    st.from_regex(r"[0-9]{4,14}(-[0-9]{1,8}){1,2}", fullmatch=True),
    st.builds(iso, st.floats(min_value=0, max_value=4.0e9)),
)
near_keys = st.one_of(st.sampled_from(EDGES), st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,110}", fullmatch=True))
near_values = st.one_of(
    near_texts,
    st.none(),
    st.booleans(),
    st.integers(),
    st.lists(st.one_of(near_texts, st.none(), st.integers()), max_size=4),
    st.dictionaries(near_keys, near_texts, max_size=3),
)


def pyyaml(fields: dict[str, Any]) -> str:
    return yaml.dump(fields, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=False)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_the_known_path_writes_what_pyyaml_writes(fields: dict[str, Any]) -> None:
    known = _known_header(fields)
    if known is not None:
        assert known == pyyaml(fields)
    assert yaml_header(fields) == pyyaml(fields)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(near_keys, near_values, min_size=1, max_size=8))
def test_near_plain_headers_are_written_as_pyyaml_writes_them(fields: dict[str, Any]) -> None:
    known = _known_header(fields)
    assert known is None or known == pyyaml(fields)
    if known is not None:
        assert yaml.safe_load(known) == fields


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["speedy", "agent-00042", "human-alice"]),
    st.lists(st.sampled_from(["speedy", "helper", "agent-7"]), max_size=3),
    st.floats(min_value=1.0e9, max_value=4.0e9),
)
def test_a_raw_posts_header_takes_the_known_path_and_reads_back(author: str, mentions: list[str], ts: float) -> None:
    message = MessageEntry(7, ts, f"{int(ts * 1000):013d}-{7:08d}", author, "alice", "general", "body",
                           mentions=tuple(mentions))  # fmt: skip
    header = message.header()
    known = _known_header(header)
    assert known is not None and known == pyyaml(header)
    assert yaml.safe_load(known) == header


def test_figures_and_digit_hashes_are_left_to_pyyaml() -> None:
    fields = {"id": "r1800000000000-00000009", "score": 286.5, "source": {"bucket": "acme/x", "hash": "0" * 64}}
    assert _known_header(fields) is None
    assert yaml.safe_load(yaml_header(fields)) == fields
