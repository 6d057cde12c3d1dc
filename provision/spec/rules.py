"""Rules that span several fields, which JSON Schema cannot say (or says too vaguely to help).

Each rule reads the fully defaulted spec and yields located problems. A rule points at the key
the user wrote when there is one, and otherwise at the field a derived value came from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from provision.spec.problems import Problem
from provision.spec.source import SourceMap

Rule = Callable[[dict[str, Any], SourceMap], Iterator[Problem]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a cross-field rule."""
    RULES.append(fn)
    return fn


def _namespace(repo_id: str) -> str:
    return repo_id.split("/", 1)[0]


@rule
def jobs_mode_needs_jobs(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """Verification by jobs re-runs claims on HF Jobs, so jobs must be on."""
    if spec["verification"]["mode"] == "jobs" and not spec["jobs"]["enabled"]:
        yield smap.problem(
            ("verification", "mode"),
            "verification mode 'jobs' needs jobs enabled",
            code="jobs_disabled",
            found="jobs.enabled: false",
            expected="jobs.enabled: true, or verification.mode: manual or eval-space",
            hint="set `jobs: {enabled: true}` (the org pays for runs) or choose another mode",
        )


@rule
def top_k_needs_jobs_mode(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """Only the verifier of mode `jobs` re-runs results, so `top_k` does nothing in another mode."""
    verification = spec["verification"]
    if verification.get("top_k", 0) and verification["mode"] != "jobs":
        yield smap.problem(
            ("verification", "top_k"),
            f"verification.top_k re-runs results in mode 'jobs' only; mode {verification['mode']!r} ignores it",
            code="top_k_ignored",
            severity="warning",
            found=f"top_k: {verification['top_k']}, mode: {verification['mode']}",
            expected="verification.mode: jobs, or no top_k",
            hint="remove top_k, or choose verification mode jobs (with jobs enabled)",
        )


@rule
def admin_org_is_separate(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """Participants join `org`; organizer-only material must live where they cannot read it."""
    challenge = spec["challenge"]
    if challenge["admin_org"] == challenge["org"]:
        yield smap.problem(
            ("challenge", "admin_org"),
            "the admin org must differ from the challenge org",
            code="same_org",
            found=repr(challenge["admin_org"]),
            expected=f"an org participants never join, e.g. '{challenge['org']}-admin'",
            hint="participants can read every bucket of the org they join, audit log and private set included",
        )


@rule
def buckets_in_their_orgs(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """The central bucket belongs to the challenge org, the audit bucket to the admin org."""
    for key, org_key in (("central_bucket", "org"), ("audit_bucket", "admin_org")):
        bucket, org = spec["storage"][key], spec["challenge"][org_key]
        if _namespace(bucket) != org:
            yield smap.problem(
                ("storage", key),
                f"the {key.replace('_', ' ')} must be in challenge.{org_key}",
                code="wrong_namespace",
                found=repr(bucket),
                expected=f"'{org}/...'",
                hint=f"remove storage.{key} to use the derived default",
            )


@rule
def eval_space_private(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """The eval Space reads the private set, so it must not sit in the participants' org."""
    space, challenge = spec["spaces"]["eval"]["id"], spec["challenge"]
    if challenge["admin_org"] == challenge["org"]:
        return  # admin_org_is_separate reports the cause
    if _namespace(space) == challenge["org"]:
        yield smap.problem(
            ("spaces", "eval", "id"),
            "the eval Space must be in the admin org",
            code="wrong_namespace",
            found=repr(space),
            expected=f"'{spec['challenge']['admin_org']}/...'",
            hint="it mounts the private evaluation set, which participants must not read",
        )


@rule
def unique_names(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """Channels, tracks, metrics and directions are looked up by name, so names must be unique."""
    groups: list[tuple[tuple[str, ...], str]] = [
        (("board", "channels"), "name"),
        (("scoring", "tracks"), "name"),
        (("scoring", "metrics"), "field"),
        (("directions",), "name"),
    ]
    for path, key in groups:
        items = spec[path[0]][path[1]] if len(path) == 2 else spec[path[0]]
        counts = Counter(item[key] for item in items)
        for i, item in enumerate(items):
            if counts[item[key]] > 1 and [x[key] for x in items].index(item[key]) != i:
                yield smap.problem(
                    (*path, i, key),
                    f"duplicate {key} {item[key]!r}",
                    code="duplicate",
                    hint=f"each entry of {'.'.join(path)} needs its own {key}",
                )


@rule
def score_not_a_metric(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """The score field is ranked on its own; listing it as a metric would show it twice."""
    scoring = spec["scoring"]
    for i, metric in enumerate(scoring["metrics"]):
        if metric["field"] == scoring["score_field"]:
            yield smap.problem(
                ("scoring", "metrics", i, "field"),
                "the score field cannot also be a metric",
                code="duplicate",
                found=repr(metric["field"]),
                hint="remove this metric; put bounds on the score with verification.guards",
            )


@rule
def noise_needs_sigma(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """A noise model without a sigma would declare every pair of different scores a tie or none."""
    noise = spec["scoring"]["noise"]
    if noise["kind"] != "none" and noise["sigma"] <= 0 and noise["min_margin"] <= 0:
        yield smap.problem(
            ("scoring", "noise"),
            f"noise kind {noise['kind']!r} needs sigma > 0 or min_margin > 0",
            code="noise_sigma",
            found=f"sigma: {noise['sigma']}",
            hint="measure sigma from repeated runs of one submission, or set kind: none",
        )


@rule
def channel_general_exists(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """Messages without a channel go to `general`, so it must exist."""
    if "general" not in {c["name"] for c in spec["board"]["channels"]}:
        yield smap.problem(
            ("board", "channels"),
            "the channel 'general' is missing",
            code="no_general",
            hint="add `- name: general`; messages that name no channel go there",
        )


@rule
def sleep_time_sane(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """0 is not a sleep time, and free hardware cannot be told when to sleep."""
    for name, space in spec["spaces"].items():
        if space["sleep_time"] == 0:
            yield smap.problem(
                ("spaces", name, "sleep_time"),
                "a sleep time of 0 is not valid",
                code="sleep_time",
                expected="seconds > 0, -1 for never, or null for the Hub's default",
            )
        elif space["sleep_time"] is not None and space["hardware"] == "cpu-basic":
            yield smap.problem(
                ("spaces", name, "sleep_time"),
                "cpu-basic Spaces ignore a custom sleep time",
                severity="warning",
                code="sleep_time",
                hint="choose paid hardware, or remove sleep_time",
            )


@rule
def quotas_consistent(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """A per-user cap below the per-agent cap makes the per-agent cap unreachable."""
    quota = spec["jobs"]["quota"]
    if spec["jobs"]["enabled"] and quota["per_user_per_day"] < quota["per_agent_per_day"]:
        yield smap.problem(
            ("jobs", "quota", "per_user_per_day"),
            "the per-user quota is below the per-agent quota",
            severity="warning",
            code="quota",
            found=f"{quota['per_user_per_day']} < {quota['per_agent_per_day']}",
            hint="an agent can never reach per_agent_per_day; raise per_user_per_day or lower it",
        )


@rule
def invite_link_for_org(spec: dict[str, Any], smap: SourceMap) -> Iterator[Problem]:
    """An invite link to another org would send participants to the wrong place."""
    link = spec["dashboard"]["invite_link"]
    org = spec["challenge"]["org"]
    if link and "huggingface.co/organizations/" in link and f"/organizations/{org}/" not in link:
        yield smap.problem(
            ("dashboard", "invite_link"),
            "the invite link is for another organization",
            severity="warning",
            code="invite_link",
            found=repr(link),
            expected=f"https://huggingface.co/organizations/{org}/share/...",
        )
