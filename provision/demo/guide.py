"""What the demo's agents read in the onboarding README: the steps they follow, taken from the text.

The demo's agents do not know the API by heart: they read the collab's seeded `README.md` (the
one in the central bucket) and take from it the scratch bucket's name, the handshake file, the
request of each step (method, path, body fields: from the `curl` examples of the registration,
posting and results sections, checked against the API reference table) and the fields of a
result's frontmatter. When the collab runs jobs, the job requests (launch, status, logs, an
agent's jobs and quota) come from the reference table. A README that lacks a step the demo
needs, or whose example disagrees with its own reference table, is a `GuideError` naming what is
missing: running the demo checks the README an organizer is about to hand to agents.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from provision.errors import ProvisionError

AGENT_VAR = "$AGENT_ID"
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`(?: \(?`\{([^`]*)\}`\)?)?")
_CURL_METHOD = re.compile(r"-X (\w+)")
_CURL_URL = re.compile(r'"\$COLLAB_API(/[^"?]*)')
_CURL_DATA = re.compile(r'-d "((?:[^"\\]|\\.)*)"')


class GuideError(ProvisionError):
    """The onboarding README lacks a step the demo follows, or contradicts itself."""


@dataclass(frozen=True)
class Call:
    """One documented request: method, path (with `{name}` parameters) and body fields."""

    method: str
    path: str
    fields: tuple[str, ...] = ()  # required body fields
    optional: tuple[str, ...] = ()

    def __str__(self) -> str:
        shown = [*self.fields, *(f"{f}?" for f in self.optional)]
        return f"{self.method} {self.path}" + (f" {{{', '.join(shown)}}}" if shown else "")

    def url(self, **params: str) -> str:
        """The path with its `{name}` parameters filled in."""
        try:
            return self.path.format(**params)
        except KeyError as exc:
            raise GuideError(f"the README's {self.method} {self.path} needs a {exc.args[0]} the demo lacks") from None

    def body(self, **values: Any) -> dict[str, Any]:
        """The request body: every required field, and the optional ones given (None leaves one out)."""
        missing = [f for f in self.fields if values.get(f) is None]
        if missing:
            raise GuideError(f"the README's {self} asks for {', '.join(missing)}, which the demo cannot fill")
        given = {k: v for k, v in values.items() if v is not None}
        unknown = [k for k in given if k not in self.fields and k not in self.optional]
        if unknown:
            raise GuideError(f"the README's {self} does not document {', '.join(unknown)}")
        return given


@dataclass(frozen=True)
class JobCalls:
    """The job requests of the API reference: launch one, follow it, read its output and the agent's quota."""

    launch: Call
    status: Call
    logs: Call
    listed: Call

    def summary(self) -> str:
        return f"job: {self.launch}, then {self.status} until it ends, {self.logs}; quota: {self.listed}"


@dataclass(frozen=True)
class Guide:
    """The steps of the onboarding README that the demo's agents follow."""

    scratch_bucket: str  # with `{agent_id}`
    handshake_file: str
    register: Call
    post: Call
    promote: Call
    open_channel: Call
    channels: Call
    result: Call
    result_fields: dict[str, Any]  # frontmatter field -> the README's example value
    results: Call
    broadcast: Call
    leaderboard: Call
    digest: Call
    jobs: JobCalls | None = None  # None when the collab runs no jobs
    reference: dict[tuple[str, str], Call] = field(default_factory=dict)  # the API reference, by (method, path)

    def call(self, method: str, path: str) -> Call:
        """A request of the API reference table; GuideError when the README does not list it."""
        return _table_call(self.reference, method, path)

    def bucket_of(self, agent_id: str) -> str:
        return self.scratch_bucket.format(agent_id=agent_id)

    def summary(self) -> list[str]:
        """The steps as the demo will follow them, one line each."""
        return [
            f"register: write {self.handshake_file} into {self.bucket_of('<agent_id>')}, then {self.register}",
            f"post: {self.post}; promote a file of the bucket: {self.promote}; open a channel: {self.open_channel}",
            f"result: {self.result}, the file's frontmatter with {', '.join(self.result_fields)}",
            f"read: {self.leaderboard}, {self.results}, {self.digest}; the organizers announce: {self.broadcast}",
            *([self.jobs.summary()] if self.jobs else []),
        ]


def read_guide(text: str, *, required_result_fields: tuple[str, ...] = (), jobs: bool = False) -> Guide:
    """Read the steps out of an onboarding README.

    Args:
        text: The README.
        required_result_fields: Fields the backend requires in a result; the README's example must show each.
        jobs: The collab runs jobs: the API reference must list the job requests.

    Raises:
        GuideError: a step is missing or contradicts the API reference table, naming which.
    """
    sections = _sections(text)
    table = _reference_table(sections)
    register = _section(sections, r"\bregister\b", "registration")
    bash = _blocks(register, "bash", "registration")
    scratch = _one(
        r'(?:hf buckets|collab bucket) create "([^"]+)"',
        bash,
        "command that creates the scratch bucket (hf buckets create ... or, locally, collab bucket create ...)",
    )
    if AGENT_VAR not in scratch:
        raise GuideError(f"the README's scratch bucket {scratch!r} does not name {AGENT_VAR}")
    handshake = _one(r'(?:hf buckets|collab bucket) cp - "hf://buckets/' + re.escape(scratch) + r'/([^"]+)"', bash,
                     "command that writes the handshake file into the scratch bucket")  # fmt: skip
    posting = _section(sections, r"\bpost\b", "posting")
    post_calls = _curls(_blocks(posting, "bash", "posting"))
    results_section = _section(sections, r"\bresults?\b", "results")
    channels_section = _section(sections, r"\bchannels?\b", "channels")
    open_channel = _endpoint_in(channels_section, "POST", "channels", "opening a channel", table)
    return Guide(
        scratch_bucket=scratch.replace(AGENT_VAR, "{agent_id}"),
        handshake_file=handshake,
        register=_checked(_curl_with(_curls(bash), "agent_id", "registration"), table),
        post=_checked(_curl_with(post_calls, "body", "a raw post"), table),
        promote=_checked(_curl_with(post_calls, "path", "a promoted post"), table),
        open_channel=open_channel,
        channels=_table_call(table, "GET", "/v1/channels"),
        result=_checked(_curl_with(_curls(_blocks(results_section, "bash", "results")), "path", "a result"), table),
        result_fields=_result_fields(results_section, required_result_fields),
        results=_table_call(table, "GET", "/v1/results"),
        broadcast=_table_call(table, "POST", "/v1/broadcasts"),
        leaderboard=_table_call(table, "GET", "/v1/leaderboard"),
        digest=_table_call(table, "GET", "/v1/digest/{agent_id}"),
        jobs=_job_calls(table) if jobs else None,
        reference=table,
    )


def reference_calls(text: str) -> dict[tuple[str, str], Call]:
    """Every request the README's API reference lists, by (method, path).

    Raises:
        GuideError: the README has no API reference, or it lists no endpoint.
    """
    return _reference_table(_sections(text))


def _job_calls(table: dict[tuple[str, str], Call]) -> JobCalls:
    launch = _table_call(table, "POST", "/v1/jobs")
    missing = [f for f in ("agent_id", "submission") if f not in (*launch.fields, *launch.optional)]
    if missing:
        raise GuideError(f"the README's API reference says {launch}, without {', '.join(missing)}")
    return JobCalls(
        launch=launch,
        status=_table_call(table, "GET", "/v1/jobs/{id}"),
        logs=_table_call(table, "GET", "/v1/jobs/{id}/logs"),
        listed=_table_call(table, "GET", "/v1/jobs"),
    )


def _sections(text: str) -> dict[str, str]:
    heads = list(_HEADING.finditer(text))
    return {
        m.group(1).strip(): text[m.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        for i, m in enumerate(heads)
    }


def _section(sections: dict[str, str], pattern: str, what: str) -> str:
    for title, body in sections.items():
        if re.search(pattern, title, re.IGNORECASE):
            return body
    raise GuideError(f"the README has no section on {what} (a '## ...' heading matching {pattern!r})")


def _blocks(section: str, language: str, what: str) -> str:
    found = [m.group(2) for m in _FENCE.finditer(section) if m.group(1) == language]
    if not found:
        raise GuideError(f"the README's {what} section has no ```{language} example")
    return "\n".join(found)


def _one(pattern: str, text: str, what: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise GuideError(f"the README shows no {what}")
    return match.group(1)


def _curls(block: str) -> list[tuple[Call, tuple[str, ...]]]:
    """Each curl command of a block: the call it makes and the fields of its JSON body."""
    joined = re.sub(r"\\\n\s*", " ", block)
    calls = []
    for line in joined.splitlines():
        if not line.lstrip().startswith("curl "):
            continue
        method, url = _CURL_METHOD.search(line), _CURL_URL.search(line)
        if method is None or url is None:
            raise GuideError(f"the README's curl example has no method or $COLLAB_API URL: {line.strip()}")
        data = _CURL_DATA.search(line)
        fields: tuple[str, ...] = ()
        if data:
            raw = re.sub(r"\\(.)", r"\1", data.group(1)).replace("$", "")
            try:
                document = json.loads(raw)
            except ValueError:
                raise GuideError(f"the README's curl example sends no JSON object: {line.strip()}") from None
            fields = tuple(document) if isinstance(document, dict) else ()
        calls.append((Call(method.group(1), url.group(1)), fields))
    return calls


def _curl_with(calls: list[tuple[Call, tuple[str, ...]]], field: str, what: str) -> tuple[Call, tuple[str, ...]]:
    for call, fields in calls:
        if call.method == "POST" and field in fields:
            return call, fields
    raise GuideError(f"the README shows no curl example of {what} (a POST whose body has {field!r})")


def _reference_table(sections: dict[str, str]) -> dict[tuple[str, str], Call]:
    body = _section(sections, r"\bapi reference\b", "the API reference")
    table: dict[tuple[str, str], Call] = {}
    for row in (line for line in body.splitlines() if line.startswith("| `")):
        first = row.split(" | ")[0]
        for method, path, fields in _ENDPOINT.findall(first):
            call = _call(method, path.split("?")[0], fields)
            table[(call.method, call.path)] = call
    if not table:
        raise GuideError("the README's API reference lists no endpoint (rows like | `POST /v1/agents` `{agent_id}` |)")
    return table


def _call(method: str, path: str, fields: str) -> Call:
    names = [f.strip() for f in fields.split(",") if f.strip()]
    return Call(
        method,
        path,
        tuple(n for n in names if not n.endswith("?")),
        tuple(n.removesuffix("?") for n in names if n.endswith("?")),
    )


def _table_call(table: dict[tuple[str, str], Call], method: str, path: str) -> Call:
    call = table.get((method, path))
    if call is None:
        raise GuideError(f"the README's API reference does not list {method} {path}")
    return call


def _checked(found: tuple[Call, tuple[str, ...]], table: dict[tuple[str, str], Call]) -> Call:
    """The table's entry for a curl example, which must agree with it."""
    call, fields = found
    listed = _table_call(table, call.method, call.path)
    missing = [f for f in listed.fields if f not in fields]
    unknown = [f for f in fields if f not in listed.fields and f not in listed.optional]
    if missing or unknown:
        raise GuideError(
            f"the README's example of {call.method} {call.path} sends {{{', '.join(fields)}}} but its API reference "
            f"says {listed}"
        )
    return listed


def _endpoint_in(section: str, method: str, word: str, what: str, table: dict[tuple[str, str], Call]) -> Call:
    for found_method, path, fields in _ENDPOINT.findall(section):
        if found_method == method and word in path:
            call = _call(found_method, path, fields)
            listed = _table_call(table, call.method, call.path)
            if (listed.fields, listed.optional) != (call.fields, call.optional):
                raise GuideError(f"the README says {call} for {what}, but its API reference says {listed}")
            return listed
    raise GuideError(f"the README does not say how to do {what} (`{method} /v1/...{word}...`)")


def _result_fields(section: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The frontmatter example of the results section: its fields and example values."""
    for match in _FENCE.finditer(section):
        text = match.group(2)
        if match.group(1) in ("yaml", "markdown") and text.startswith("---\n"):
            head = text.removeprefix("---\n").partition("\n---")[0]
            fields = yaml.safe_load(head)
            if isinstance(fields, dict) and fields:
                missing = [f for f in required if f not in fields]
                if missing:
                    raise GuideError(
                        f"the README's result example lacks {', '.join(missing)}, which the backend requires"
                    )
                return {str(k): v for k, v in fields.items()}
    raise GuideError(
        "the README's results section shows no frontmatter example (a ```markdown block that opens with a --- line)"
    )
