"""The backend's parts, wired once at start and handed to services (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from collab_backend.audit import AuditLog
from collab_backend.identity import IdentityProvider
from collab_backend.jobs.base import Launcher, Runs
from collab_backend.limits import Limits
from collab_backend.record.store import Record
from collab_backend.services.credit import CreditCache
from collab_backend.services.denylist import StandingCache
from collab_backend.services.direction_index import DirectionIndex
from collab_backend.services.leaderboard import LeaderboardCache
from collab_backend.services.result_views import ResultViews
from collab_backend.services.snapshot_parts import register
from collab_backend.services.threads import HandleIndex, ThreadIndex
from collab_backend.services.usage_view import UsageRanking
from collab_backend.spec import ChallengeSpec
from collab_backend.storage import Storage


@dataclass
class Watch:
    """What the backend last saw of files organizers may edit by hand."""

    verification_hash: str | None = None
    index_problem: str | None = None  # why the hand-edited verification index was not (wholly) taken in
    index_malformed: bool = False  # the file is not a JSON object: left as it is until fixed
    index_poll_s: float = 5.0  # how often the index file is looked at for hand edits


@dataclass(frozen=True)
class Context:
    """Spec, storage, record, identity, limits and the job launcher of one running backend."""

    spec: ChallengeSpec
    storage: Storage
    record: Record
    identity: IdentityProvider
    limits: Limits
    audit: AuditLog | None = None
    watch: Watch = field(default_factory=Watch)
    leaderboard: LeaderboardCache = field(default_factory=LeaderboardCache)
    usage: UsageRanking = field(default_factory=UsageRanking)
    launcher: Launcher | None = None  # runs jobs (local subprocesses or HF Jobs); None: jobs are off here
    runs: Runs = field(default_factory=Runs)
    job_args: tuple[str, ...] = ()  # harness arguments every job passes from the spec (COLLAB_JOBS_ARGS)
    result_views: ResultViews = field(default_factory=ResultViews)  # the read views of results for people
    threads: ThreadIndex = field(default_factory=ThreadIndex)
    handles: HandleIndex = field(default_factory=HandleIndex)
    submission_config: str | None = None  # the challenge type's config file in a submission folder (ruling predicates)
    credit: CreditCache = field(default_factory=CreditCache)  # the credit ledger along lineage
    proxy_credit: CreditCache = field(default_factory=lambda: CreditCache(proxies=True))  # its rehearsal view
    directions: DirectionIndex = field(default_factory=DirectionIndex)  # what each direction holds
    denylist: str | None = None  # the type's denylist in its harness folder: its standing rules
    standing: StandingCache = field(default_factory=StandingCache)

    def __post_init__(self) -> None:
        # The rankings the first digest serves are kept in the record's snapshots (registered before it opens).
        register(self.record, self.spec.scoring, self.leaderboard, self.credit, self.directions)

    @property
    def central(self) -> str:
        return self.spec.storage.central_bucket
