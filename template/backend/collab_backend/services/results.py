"""Results, verdicts and the verification index.

A result is promoted from the agent's own bucket (never sent raw), checked against the spec
(score and required fields, metric types, track, lineage) and then immutable. A result naming
`job` (its agent's own ended job) takes its score and metrics from the job's checked summary and
the job's fingerprint; a typed figure that disagrees is refused. Without a job it is a claim, its
fingerprint computed from the `submission` folder it names (none without one). A stand-in's
summary (`proxy: true`) makes a `proxy` result, which never ranks.
Verdicts are `pending | valid | invalid`; a human verdict always wins over a machine one, and a
human sets one with compare-and-set (`expected`), so two organizers cannot silently overwrite each
other. `results/verification_status.json` mirrors the verdicts; organizers may also edit it by
hand, and the backend picks such edits up as human verdicts. Every change is announced on the board.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.poller import Poller
from collab_backend.record.entries import JobEntry, MessageEntry, ResultEntry, VerdictEntry, iso
from collab_backend.record.state import State
from collab_backend.record.store import Unchanged
from collab_backend.services.board import message_id
from collab_backend.services.direction_index import check_direction
from collab_backend.services.fingerprints import fingerprint, harness_files
from collab_backend.services.frontmatter import split_frontmatter
from collab_backend.services.jobs import submission_files, submission_folder
from collab_backend.services.leaderboard import ruling_over
from collab_backend.services.registry import agent_of
from collab_backend.services.rulings import refuse_ruled
from collab_backend.services.sources import locate, read_text
from collab_backend.storage import StorageError, TooLarge

log = logging.getLogger("collab_backend.results")
MAX_PARENTS = 20
MAX_INDEX_BYTES = 64 << 20  # a hand-edited verification index larger than this is not read
FIGURE_TOLERANCE = 1e-6  # a typed figure agrees with the job's when within this relative difference
STAMPED = {"status", "track", "parents", "fingerprint", "job", "basis", "submission", "proxy"}  # the server's
Verdict = Literal["pending", "valid", "invalid"]
BASIS_RULE = (
    "a result naming `job` is measured (basis `job`): its score and metrics come from that job's checked summary and "
    "a typed figure that differs is refused; without `job` it is a claim (basis `claim`, self-measured); a stand-in's "
    "figures (the summary or the frontmatter says `proxy: true`) make a `proxy` result, which never ranks"
)
FINGERPRINT_RULE = (
    "computed by the backend, never typed: sha256 of the canonical JSON of the challenge type, jobs.image, "
    "jobs.flavor, whether a stand-in runs it, and the file hashes of the harness folder and of the submission "
    "folder; same fingerprint, same configuration; a claim without `submission` has none"
)


def _number(fields: dict[str, Any], name: str) -> float:
    value = fields.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise APIError("VALIDATION_FAILED", f"`{name}` must be a finite number, found {value!r}", None)
    return float(value)


def check_result_fields(ctx: Context, fields: dict[str, Any], agent: str | None = None) -> dict[str, Any]:
    """Validate a result's frontmatter against the spec; return the normalised parts.

    A result naming `job` takes its score and metrics from that job's checked summary (see
    `measured`); otherwise its typed figures are a claim. `client_fields` holds what the result
    file keeps of the frontmatter besides the fields the server stamps: the score and the metrics
    as the numbers it used, and the spec's other required fields. Anything else (a `verdict:
    valid`, a `verified: true`, a typed `fingerprint`) is dropped.
    """
    scoring = ctx.spec.scoring
    job_id = fields.get("job")
    run = measured(ctx, job_id, agent) if job_id is not None else None
    if run is not None:
        fields = _figures_of(ctx, fields, run)
    missing = [f for f in (scoring.score_field, *scoring.required_fields) if f not in fields]
    if missing and run is not None and not run.summary["valid"]:
        reasons = "; ".join(run.summary["reasons"][:3])
        said = f"job {run.launch.job_id} measured no {', '.join(missing)}: the harness judged it invalid ({reasons})"
        raise APIError("JOB_NOT_USABLE", said, "a `status: negative` result on it takes the figures you type for "
                       "what it lacks; with none to give, say what you learned in a post naming the job")  # fmt: skip
    if missing:
        raise APIError(
            "VALIDATION_FAILED", f"missing required field(s): {', '.join(missing)}", "see GET /v1 for the result format"
        )
    metrics = {m.field: _number(fields, m.field) for m in scoring.metrics if m.field in fields}
    status = fields.get("status", "agent-run")
    if status not in ("agent-run", "negative"):
        raise APIError("VALIDATION_FAILED", "`status` is `agent-run` or `negative`", None)
    track = fields.get("track")
    if run is not None and run.launch.track is not None:
        if track is not None and track != run.launch.track:
            raise APIError("VALIDATION_FAILED", f"`track` is {track!r} but job {run.launch.job_id} ran for "
                           f"{run.launch.track!r}", "leave `track` out: the job's track is used")  # fmt: skip
        track = run.launch.track
    names = [t.name for t in scoring.tracks]
    if names and track not in names:
        raise APIError("VALIDATION_FAILED", f"`track` must be one of: {', '.join(names)}", None)
    if not names and track is not None:
        raise APIError("VALIDATION_FAILED", "this collab has no tracks; remove `track`", None)
    parents = fields.get("parents", [])
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents) or len(parents) > MAX_PARENTS:
        raise APIError("VALIDATION_FAILED", f"`parents` is a list of at most {MAX_PARENTS} result ids", None)
    if run is not None and status == "agent-run" and not run.summary["valid"]:
        reasons = "; ".join(run.summary["reasons"][:3])
        raise APIError("JOB_NOT_USABLE", f"job {run.launch.job_id} judged the submission invalid: {reasons}",
                       "fix the submission and run a new job, or record it as `status: negative`")  # fmt: skip
    score = _number(fields, scoring.score_field)
    kept = {name: fields[name] for name in scoring.required_fields if name not in STAMPED}
    direction = check_direction(ctx.record.state, fields.get("direction"))
    if direction is not None:
        kept["direction"] = direction
    parts: dict[str, Any] = {
        "score": score,
        "client_fields": {**kept, scoring.score_field: score, **metrics},
        "metrics": metrics,
        "status": status,
        "track": track,
        "parents": tuple(dict.fromkeys(parents)),
    }
    if run is not None:
        proxy = bool(run.summary["proxy"])
        return {**parts, "basis": "proxy" if proxy else "job", "job": run.launch.job_id,
                "fingerprint": run.launch.fingerprint, "submission": run.launch.source,
                "interval": measured_interval(run.summary, scoring.score_field),
                "originator": run.launch.originator, "sponsor": run.launch.sponsor}  # fmt: skip
    return {**parts, "basis": "proxy" if fields.get("proxy") is True else "claim", "job": None}


@dataclass(frozen=True)
class Run:
    """A job that can back a result: its launch and its checked summary."""

    launch: JobEntry
    summary: dict[str, Any]


def measured(ctx: Context, job_id: Any, agent: str | None) -> Run:
    """The agent's own ended job (or one that ran its run request) with a checked summary, or JOB_NOT_USABLE."""
    if not isinstance(job_id, str):
        raise APIError("VALIDATION_FAILED", "`job` is a job id (job-<digits>-<digits>)", "GET /v1/jobs?agent=<you>")
    events = ctx.record.state.jobs.get(job_id)
    if events is None:
        raise APIError("JOB_NOT_USABLE", f"no job {job_id!r}", "GET /v1/jobs?agent=<your agent> lists yours")
    launch = events[0]
    if agent is not None and agent not in (launch.agent, launch.originator):
        raise APIError("JOB_NOT_USABLE", f"job {job_id} was launched by agent {launch.agent}, not {agent}",
                       "name a job of your own agent, or one that ran your run request")  # fmt: skip
    end = next((e for e in events if e.event == "end"), None)
    if end is None:
        raise APIError("JOB_NOT_USABLE", f"job {job_id} has not ended", "wait until GET /v1/jobs/{id} shows it ended")
    if end.status != "succeeded" or end.summary is None:
        raise APIError("JOB_NOT_USABLE", f"job {job_id} ended {end.status} without a summary ({end.reason})",
                       "run a new job")  # fmt: skip
    return Run(launch, end.summary)


def _figures_of(ctx: Context, fields: dict[str, Any], run: Run) -> dict[str, Any]:
    """The frontmatter with the score and the metrics taken from the run; a typed one must agree."""
    scoring = ctx.spec.scoring
    out = dict(fields)
    for name in (scoring.score_field, *(m.field for m in scoring.metrics)):
        value = run.summary.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            if name == scoring.score_field and run.summary["valid"]:
                raise APIError("JOB_NOT_USABLE", f"job {run.launch.job_id}'s summary has no `{name}`", None)
            continue
        typed = fields.get(name)
        if typed is not None and not _agrees(typed, value):
            said = f"`{name}` is {typed!r} in the result but job {run.launch.job_id} measured {value!r}"
            raise APIError("FIGURE_MISMATCH", said, "leave the figure out: the backend takes it from the job")
        out[name] = value
    return out


def measured_interval(summary: dict[str, Any], score_field: str) -> list[float] | None:
    """The summary's 95% interval of the score (`<score_field>_ci95`: [low, high]), when it has a usable one."""
    value = summary.get(f"{score_field}_ci95")
    if not isinstance(value, list) or len(value) != 2:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    low, high = float(value[0]), float(value[1])
    return [low, high] if low <= high else None


def _agrees(typed: Any, value: float) -> bool:
    if isinstance(typed, bool) or not isinstance(typed, int | float):
        return False
    return math.isclose(typed, value, rel_tol=FIGURE_TOLERANCE, abs_tol=1e-12)


def promote_result(ctx: Context, identity: Identity, agent_id: str, path: str) -> tuple[ResultEntry, bool]:
    """Record a result from the agent's bucket; the same content again returns the first (False).

    The writer decides what is the same, so concurrent submissions of one file record it once.
    """
    agent = agent_of(ctx, identity, agent_id)
    src = locate(ctx, agent, path)
    state = ctx.record.state
    done = state.promoted_results.get(src.key)
    if done is not None:  # a quick answer; the writer checks again
        return state.results[done], False
    text = read_text(ctx, src)
    fields, body = split_frontmatter(text)
    parts = check_result_fields(ctx, fields, agent)
    if parts["job"] is None:
        parts = {**parts, **claimed_run(ctx, agent, fields.get("submission"))}
    if parts["status"] == "agent-run":
        refuse_ruled(ctx, parts["submission"], parts["fingerprint"])
    source = src.record()

    def build(state: State, seq: int, ts: float) -> ResultEntry:
        first = state.promoted_results.get(src.key)
        if first is not None:
            raise Unchanged(state.results[first])
        unknown = [p for p in parts["parents"] if p not in state.results]
        if unknown:
            raise APIError("VALIDATION_FAILED", f"unknown parent result(s): {', '.join(unknown[:5])}", None)
        return ResultEntry(seq, ts, f"r{message_id(seq, ts)}", agent, identity.user, body=body, source=source,
                           **parts)  # fmt: skip

    return ctx.limits.promotions.charged(src.bucket, lambda: ctx.record.write_new(build))


def verification_words(spec: Any) -> str:
    """What this backend does to verify results in the spec's mode, in one paragraph."""
    verification = spec.verification
    manual = ("organizers set verdicts through PUT /v1/results/{id}/verdict or by editing "
              "results/verification_status.json by hand (taken in within seconds)")  # fmt: skip
    if verification.mode == "manual":
        return f"manual: {manual}; a result stays `pending` until then"
    if verification.mode == "eval-space":
        return ("eval-space: the organizers' eval service runs the challenge type's cheap check on results no one "
                "has ruled on and sets the verdicts it reaches (`verifier:eval-space`); what it cannot decide stays "
                f"`pending`. Always: {manual}; a human verdict wins")  # fmt: skip
    top_k = f", or that enters its track's top {verification.top_k}," if verification.top_k else ""
    return (
        "jobs: a pending result that would take first place in its track over the verified champion (outside the "
        "champion's tie group; with no champion, ranked first)" + top_k + " is re-run by the backend on the "
        "organizers' budget "
        f"({verification.runs_per_day} re-runs in any 24 h, never an agent's quota), on its submission folder, with "
        "the private set read-only at /private when the organizers uploaded one (else the public set, said in the "
        "reason); one re-run per fingerprint, "
        "shared by every result with it. `valid` when the re-run is valid, passes the guards and its figure is within "
        f"a relative {verification.tolerance:g} of the result's, widened by the tie margin; `invalid` otherwise, with "
        "the reason; an infrastructure failure leaves it `pending` with the reason, retried after 1 and 2 minutes (3 "
        "tries). A verified result ranks by the re-run's figure (`private_score`). A claim naming no `submission` "
        f"cannot be re-run: it stays `pending` until the organizers rule. Always: {manual}; a human verdict wins"
    )


def claimed_run(ctx: Context, agent: str, submission: Any) -> dict[str, Any]:
    """A claim's `submission` folder and its fingerprint (both None when it names none)."""
    if submission is None:
        return {"fingerprint": None, "submission": None}
    if not isinstance(submission, str):
        raise APIError("VALIDATION_FAILED", "`submission` is a folder of your agent's bucket", None)
    bucket = naming.scratch_bucket(ctx.spec, agent)
    folder = submission_folder(submission)
    files = submission_files(ctx, bucket, folder)
    return {"fingerprint": fingerprint(ctx, files, folder, harness_files(ctx)),
            "submission": {"bucket": bucket, "path": folder}}  # fmt: skip


def set_verdict(
    ctx: Context,
    result_id: str,
    verdict: Verdict,
    by: str,
    reason: str = "",
    expected: str | None = None,
    *,
    job: str | None = None,
    figures: dict[str, float] | None = None,
    gap: tuple[float, float] | None = None,
) -> VerdictEntry | None:
    """Record a verdict; None when nothing changed (same verdict, or a machine against a human).

    A machine may record `pending` with a reason (why a re-run has not decided yet); it writes
    again only when the reason changes. `gap` is a re-run's (gap, noise) on the private set.
    """
    human = by.startswith("human:")

    def build(state: State, seq: int, ts: float) -> VerdictEntry:
        if result_id not in state.results:
            raise APIError("NOT_FOUND", f"no result {result_id!r}", None)
        current = state.verdicts.get(result_id)
        ruling = ruling_over(result_id, current, list(state.rulings.values()))  # it decides until a human rules
        shown = "invalid" if ruling else current.verdict if current else "pending"
        if expected is not None and expected != shown:
            raise APIError(
                "VERDICT_CHANGED", f"the verdict is now {shown!r}, not {expected!r}", "reload and decide again"
            )
        if current and current.human and not human:
            raise _Unchanged
        if ruling and human:
            return VerdictEntry(seq, ts, result_id, verdict, by, reason, job, figures)  # an exception to the ruling
        if current and current.verdict == verdict and current.human == human and (human or current.reason == reason):
            raise _Unchanged
        if current is None and verdict == "pending" and (human or not reason):
            raise _Unchanged
        gap_value, noise = gap if gap is not None else (None, None)
        return VerdictEntry(seq, ts, result_id, verdict, by, reason, job, figures, gap=gap_value, gap_noise=noise)

    try:
        entry = ctx.record.write(build)
    except _Unchanged:
        return None
    _announce(ctx, entry)
    sync_index_file(ctx)
    return entry


class _Unchanged(Exception):
    """Raised inside a builder to write nothing."""


def _announce(ctx: Context, entry: VerdictEntry) -> None:
    result = ctx.record.state.results[entry.result_id]
    channel = "results" if "results" in ctx.record.state.channels else "general"
    why = f": {entry.reason}" if entry.reason else ""
    body = f"Result {entry.result_id} by @{result.agent} is now **{entry.verdict}** ({entry.by}){why}."

    def build(state: State, seq: int, ts: float) -> MessageEntry:
        return MessageEntry(seq, ts, message_id(seq, ts), naming.SYSTEM_AUTHOR, "collab", channel, body, "organizer",
                            mentions=(result.agent,), refs=(), notify=(result.agent,))  # fmt: skip

    ctx.record.write(build)


def render_index(state: State) -> bytes:
    """The verification index file: every verdict, by result id."""
    doc = {
        rid: {"verdict": v.verdict, "by": v.by, "reason": v.reason, "at": iso(v.ts)}
        for rid, v in sorted(state.verdicts.items())
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def ingest_index_edits(ctx: Context) -> int:
    """Apply verdicts an organizer wrote into the index file by hand; return how many changed.

    A malformed file (not JSON, not an object) changes nothing and is kept as it is until fixed;
    entries that name no result or no verdict are skipped. Either is logged and kept in
    `ctx.watch.index_problem` (shown by GET /v1 and /v1/healthz). The record stays the truth: a
    verdict absent from the file is never dropped.
    """
    try:
        info = ctx.storage.stat(ctx.central, [naming.VERIFICATION_INDEX]).get(naming.VERIFICATION_INDEX)
        if info is None or info.hash == ctx.watch.verification_hash:
            return 0
        raw = ctx.storage.read(ctx.central, naming.VERIFICATION_INDEX, max_bytes=MAX_INDEX_BYTES)
    except TooLarge:
        return _index_problem(ctx, f"the verification index is larger than {MAX_INDEX_BYTES} bytes; not read")
    except StorageError as exc:
        log.warning("verification index not checked: %s", exc)
        return 0
    ctx.watch.verification_hash = info.hash
    try:
        edited = json.loads(raw)
    except (ValueError, RecursionError):
        return _index_problem(ctx, "the hand-edited verification index is not JSON; nothing in it was taken in")
    if not isinstance(edited, dict):
        return _index_problem(ctx, "the hand-edited verification index is not a JSON object of result ids")
    changed, skipped = 0, []
    for rid, item in edited.items():
        fields = item if isinstance(item, dict) else {"verdict": item}
        verdict, reason = fields.get("verdict"), _storable_text(fields.get("reason", ""))[:500]
        by = _storable_text(fields.get("by", ""))
        state = ctx.record.state
        if rid not in state.results or verdict not in ("pending", "valid", "invalid"):
            skipped.append(_storable_text(rid)[:40])
            continue
        current = state.verdicts.get(rid)
        if (current.verdict if current else "pending") == verdict:
            continue
        if set_verdict(ctx, rid, verdict, by if by.startswith("human:") else "human:index-file", reason):
            changed += 1
    ctx.watch.index_problem = None
    if skipped:
        _index_problem(ctx, f"{len(skipped)} entry(ies) of the verification index name no result or no verdict "
                       f"(pending, valid, invalid) and were skipped: {', '.join(skipped[:5])}", keep=True)  # fmt: skip
    return changed


def _index_problem(ctx: Context, problem: str, *, keep: bool = False) -> int:
    log.error("%s", problem)
    ctx.watch.index_problem = problem
    ctx.watch.index_malformed = not keep
    return 0


class IndexWatcher(Poller):
    """Takes in hand edits of the verification index every `ctx.watch.index_poll_s` seconds."""

    name = "verification-index"

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def interval(self) -> float:
        return self.ctx.watch.index_poll_s

    def tick(self) -> None:
        if ingest_index_edits(self.ctx):
            sync_index_file(self.ctx)


def _storable_text(value: Any) -> str:
    """A hand-edited value as text the record can store (lone surrogates and NULs replaced)."""
    return str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")


def sync_index_file(ctx: Context) -> None:
    """Rewrite the verification index from the record, after taking in any hand edit.

    A malformed hand edit is left in place (the organizer's text is not overwritten) until fixed.
    """
    ingest_index_edits(ctx)
    if ctx.watch.index_malformed:
        return
    ctx.record.write_files({naming.VERIFICATION_INDEX: render_index(ctx.record.state)})
    info = ctx.storage.stat(ctx.central, [naming.VERIFICATION_INDEX]).get(naming.VERIFICATION_INDEX)
    ctx.watch.verification_hash = info.hash if info else None
