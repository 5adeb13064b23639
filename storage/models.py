"""SQLAlchemy 2.0 typed models: the first-cut data model from DESIGN.md, shared by every stage.

The values of the enum-valued columns are the domain vocabulary's (storage.vocabulary).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

from storage.base import Base, utcnow
from storage.vocabulary import (
    AccessStatus,
    Action,
    AlertKind,
    CrawlRunStatus,
    DeliveryState,
    DetectionStatus,
    GapKind,
    GapState,
    JobOutcome,
    Jurisdiction,
    LeadState,
    Priority,
    ReconcileOutcome,
    RequestType,
    Role,
    TicketState,
)


def _enum(cls: type[enum.Enum], column: str, length: int = 20) -> Enum:
    """A column holding one of ``cls``'s values, checked by the database (CHECK ck_<table>_<column>).

    Non-native enums keep SQLite and PostgreSQL identical; the CHECK is what stops a value no code
    knows, written by hand or by an older version, since the column itself is a plain string.
    """
    return Enum(
        cls,
        name=column,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda c: [m.value for m in c],
    )


class Platform(Base):
    __tablename__ = "platforms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: An admin's pause (e.g. after a layout change) that outlives config reloads: sweeps skip the platform.
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    paused_reason: Mapped[str | None] = mapped_column(String(200))
    paused_by: Mapped[str | None] = mapped_column(String(100))
    high_water_mark: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: The last run's access (None: no run has answered yet), with the reason in Chinese; a later run
    #: without a wall sets it back to ok (migration 0014).
    access_status: Mapped[AccessStatus | None] = mapped_column(_enum(AccessStatus, "access_status"))
    access_reason: Mapped[str | None] = mapped_column(String(500))


class CrawlRun(Base):
    __tablename__ = "crawl_runs"
    # A platform's newest runs (health alerts every 30 s, the layout rule at each run's close) are read
    # by walking this index backwards, never by sorting the platform's whole history (migration 0018).
    __table_args__ = (Index("ix_crawl_runs_platform_id_id", "platform_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[CrawlRunStatus] = mapped_column(
        _enum(CrawlRunStatus, "status"), default=CrawlRunStatus.RUNNING
    )
    requests: Mapped[int] = mapped_column(default=0)
    items: Mapped[int] = mapped_column(default=0)
    posts_stored: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[str | None] = mapped_column(String(200))
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Crawl health: {"200": 12, "404": 1}, {"empty_text": 2, "missing_field/text": 1}, and the
    # layout-change flag with its reason, set when the run closes (crawlers/extensions/health.py).
    responses_by_status: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    dropped: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    layout_changed: Mapped[bool] = mapped_column(default=False)
    health_reason: Mapped[str | None] = mapped_column(String(500))
    #: A login wall, captcha or expired cookie this run met (ok: none, None: no answer at all).
    access_status: Mapped[AccessStatus | None] = mapped_column(_enum(AccessStatus, "access_status"))
    access_reason: Mapped[str | None] = mapped_column(String(500))


class CrawlGap(Base):
    """A request lost after its retries, kept so later runs fetch it again (crawlers/gaps.py).

    One row per platform and request fingerprint (method, URL, body): a request that fails again is
    the same gap tried once more. Only what rebuilds the request is kept: URL, method, body and the
    spider's plain meta (entry, keyword, page, label, external_id, callback); never headers, cookies
    or any secret, and the reason is a status or an exception's name.
    """

    __tablename__ = "crawl_gaps"
    __table_args__ = (
        UniqueConstraint("platform_id", "fingerprint"),
        # The open gaps of a platform, read when each run opens.
        Index("ix_crawl_gaps_state_platform_id", "state", "platform_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[GapKind] = mapped_column(_enum(GapKind, "kind"))
    url: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(10), default="GET")
    body: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[GapState] = mapped_column(_enum(GapState, "state"), default=GapState.OPEN)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_tried_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=1)
    last_reason: Mapped[str | None] = mapped_column(String(200))
    #: When it was recovered or aged out.
    closed_at: Mapped[datetime | None]


class RawResponse(Base):
    """A platform's answer, masked and gzip-compressed, kept as evidence: posts get edited or deleted.

    ``body_gz`` holds the body with personal data masked and author handles replaced by their keyed
    hash (storage.body_masking), in the charset it was served in. ``sha256`` is of the body as
    served (the original, up to the size limit), so an original copy can still be proven genuine;
    it is unique, so the listing page behind twenty posts is stored once and a re-crawl of an
    unchanged page stores nothing.
    """

    __tablename__ = "raw_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[int] = mapped_column(default=200)
    content_type: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(default=0)
    body_gz: Mapped[bytes] = mapped_column(LargeBinary)


def title_and_text(title: str | None, text: str | None) -> str:
    """A post as one text, title first: the one join of title and text every stage reads.

    Detection classifies it and shingles it (for a new post and for an open lead's evidence reloaded by
    a later run alike, so a lead matches the same way in every run), training and `weisu evaluate` read
    their letters so, and discovery searches it. It is the training letters' form ("title。text"), so
    the relevance model reads posts as it was trained; an untitled post is its text alone.
    """
    title, text = (title or "").strip(), (text or "").strip()
    return f"{title}。{text}" if title else text


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("platform_id", "external_id"),
        Index("ix_posts_detection_status_id", "detection_status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    parent_external_id: Mapped[str | None] = mapped_column(String(200))
    author_key: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    likes: Mapped[int] = mapped_column(default=0)
    replies: Mapped[int] = mapped_column(default=0)
    reposts: Mapped[int] = mapped_column(default=0)
    ip_location: Mapped[str | None] = mapped_column(String(100))
    entry_point: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    raw_response_id: Mapped[int | None] = mapped_column(ForeignKey("raw_responses.id"))
    detection_status: Mapped[DetectionStatus] = mapped_column(
        _enum(DetectionStatus, "detection_status"), default=DetectionStatus.NEW
    )


class CommentThread(Base):
    """A comment thread a crawl followed from a found post: what was read of it, so a later run reads
    only what is new (its own mark: a platform-wide one would stop an older thread after one page)."""

    __tablename__ = "comment_threads"
    __table_args__ = (UniqueConstraint("platform_id", "thread_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The comments platform the thread is read on, and the key that fills its URL's ``{keyword}``.
    platform_id: Mapped[str] = mapped_column(ForeignKey("platforms.id"))
    thread_key: Mapped[str] = mapped_column(String(200))
    #: The found post the thread hangs under (None for a watched id from config.yaml).
    source_platform_id: Mapped[str | None] = mapped_column(String(64))
    source_external_id: Mapped[str | None] = mapped_column(String(200))
    first_followed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_read_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The source post's reply count when the thread was last read in full: a larger one re-reads it.
    replies_at_read: Mapped[int] = mapped_column(default=0)
    #: "ISO time external-id" of the newest top-level comment read: paging stops there next time.
    newest_mark: Mapped[str | None] = mapped_column(String(250))


class Classification(Base):
    __tablename__ = "classifications"
    __table_args__ = (UniqueConstraint("post_id", "model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(64))
    relevance: Mapped[float] = mapped_column(Float)
    is_lead: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str | None] = mapped_column(String(50))
    category_probability: Mapped[float | None] = mapped_column(Float)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    urgency_reason: Mapped[str | None] = mapped_column(String(500))
    district: Mapped[str | None] = mapped_column(String(50))
    street: Mapped[str | None] = mapped_column(String(100))
    landmark: Mapped[str | None] = mapped_column(String(200))
    #: ours / elsewhere / unknown, and the evidence that decided it (only "elsewhere" is dropped).
    jurisdiction: Mapped[Jurisdiction | None] = mapped_column(_enum(Jurisdiction, "jurisdiction"))
    jurisdiction_reason: Mapped[str | None] = mapped_column(String(200))
    top_terms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: The type model's verdict, kept so that merging (a later step, maybe on another worker) needs no model.
    request_type: Mapped[RequestType | None] = mapped_column(_enum(RequestType, "request_type"))
    request_type_probability: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        # The queue's default order (urgent first, then problems, suggestions, questions, then SLA due
        # soonest) walks one (priority, request type) slice at a time, in one state or across all.
        Index("ix_leads_state_priority_type_sla", "state", "priority", "request_type", "sla_due_at"),
        Index("ix_leads_priority_type_sla", "priority", "request_type", "sla_due_at"),
        # The queue sorted by score, or by model uncertainty (outward from 0.5).
        Index("ix_leads_score", "score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[LeadState] = mapped_column(_enum(LeadState, "state"), default=LeadState.NEW)
    priority: Mapped[Priority] = mapped_column(_enum(Priority, "priority"), default=Priority.ORDINARY)
    category: Mapped[str | None] = mapped_column(String(50))
    category_probability: Mapped[float | None] = mapped_column(Float)
    #: Problem, question or suggestion (classify.detection decides; leads made before types were
    #: modelled are problems, migration 0011). The probability is the type model's, None when no
    #: model judged the type.
    request_type: Mapped[RequestType] = mapped_column(
        _enum(RequestType, "request_type"),
        default=RequestType.PROBLEM,
        server_default=RequestType.PROBLEM.value,
    )
    request_type_probability: Mapped[float | None] = mapped_column(Float)
    urgency_reason: Mapped[str | None] = mapped_column(String(500))
    district: Mapped[str | None] = mapped_column(String(50))
    street: Mapped[str | None] = mapped_column(String(100))
    landmark: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(1000))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    top_terms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    model_version: Mapped[str | None] = mapped_column(String(64))
    responsible_unit: Mapped[str | None] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    found_at: Mapped[datetime] = mapped_column(default=utcnow)
    evidence_count: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_expires_at: Mapped[datetime | None]
    #: When detection first judged the lead urgent (when found, for one born urgent); None: ordinary.
    #: A fact: verify.sla turns it and found_at into the deadline.
    urgent_since: Mapped[datetime | None]
    #: The deadline for a decision, written by verify.sla.stamp_deadlines (None until stamped).
    sla_due_at: Mapped[datetime | None]
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    posts: Mapped[list[Post]] = relationship(secondary="lead_posts", viewonly=True)


class LeadPost(Base):
    """Evidence: a post belongs to at most one lead (unique post_id), so no post counts twice."""

    __tablename__ = "lead_posts"

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True)
    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, unique=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Which merge stored it, counted under the merge lock (storage.queries.next_merge_number): detection
    # workers read only the evidence stored since their last merge. 0 for rows from before migration 0020.
    merge_number: Mapped[int] = mapped_column(server_default="0", index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[Action] = mapped_column(_enum(Action, "action", length=50))
    # No CHECK on the two states: they are a lead's states, a ticket's (repush) or whatever the
    # dispatch system calls its own (dispatch_status), which weisu does not choose.
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Ticket(Base):
    """The outbox: one row per promoted lead, drained by the pusher."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[TicketState] = mapped_column(_enum(TicketState, "state"), default=TicketState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    service_request_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # The pusher's lease: a ticket is sent by at most one pusher at a time; a crashed pusher's
    # claim simply expires.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_expires_at: Mapped[datetime | None]
    # Status sync: what the dispatch system last said about the request (open / closed, notes).
    dispatch_status: Mapped[str | None] = mapped_column(String(50))
    status_notes: Mapped[str | None] = mapped_column(Text)
    status_checked_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # The unit the dispatch system says holds the case; each change of a known unit (退单 /
    # reassignment) is counted, so first-dispatch accuracy can be measured per category.
    agency_responsible: Mapped[str | None] = mapped_column(String(200))
    reassignments: Mapped[int] = mapped_column(default=0, server_default="0")
    # Reconciliation: since when an unanswered attempt (timeout, dropped connection, 5xx) may have
    # stored the request; while set, the pusher looks the request up before it may send again.
    delivery_unknown_since: Mapped[datetime | None]
    reconcile_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    reconciled_at: Mapped[datetime | None]  # when the last lookup was made, whatever it showed
    reconcile_outcome: Mapped[ReconcileOutcome | None] = mapped_column(
        _enum(ReconcileOutcome, "reconcile_outcome")
    )


class ResponsibilityRule(Base):
    """One row of the responsibility list (职责清单): the unit that handles a category, here.

    An empty district or street means "anywhere" (empty, not NULL, so the unique constraint
    holds on every database); the most specific matching row wins.
    """

    __tablename__ = "responsibility_rules"
    __table_args__ = (UniqueConstraint("category", "district", "street"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(50))
    district: Mapped[str] = mapped_column(String(50), default="", server_default="")
    street: Mapped[str] = mapped_column(String(100), default="", server_default="")
    unit: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    updated_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.ANALYST)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Carried in each session cookie; raising it (sign-out, deactivation, a new password) ends every
    #: session of the account at once, since a cookie with an older number is refused.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")


class ApiToken(Base):
    """A machine client's bearer token for /api/v1; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginFailure(Base):
    """One failed sign-in, counted per username and per client address to slow down password guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    client: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """Trained model versions with their metrics; at most one active per task."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    task: Mapped[str] = mapped_column(String(20), default="detector")
    path: Mapped[str] = mapped_column(String(500))
    data_hash: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    library_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """One run of a scheduled job (schedules.run_job records every one, even when the job raises)."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_id_started_at", "job_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(100))
    #: When it was due (a missed run: the time it missed), and when it started and finished.
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[JobOutcome] = mapped_column(_enum(JobOutcome, "outcome"))
    #: What the job returned, as JSON (e.g. crawl outcome per platform, tickets pushed, rows deleted).
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The exception (bounded) of a failed run, or who held the lease of a skipped one.
    error: Mapped[str | None] = mapped_column(String(2000))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)


class JobLease(Base):
    """Who may run a job now: taken with one conditional UPDATE, so two schedulers never run it at once."""

    __tablename__ = "job_leases"

    job_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: HOST:PID of the scheduler holding it, and the run's own token (one process may run two schedulers).
    holder: Mapped[str] = mapped_column(String(300), default="")
    token: Mapped[str] = mapped_column(String(32), default="")
    expires_at: Mapped[datetime]
    taken_at: Mapped[datetime | None]


#: APScheduler 3's SQLAlchemyJobStore table, declared here (same columns) so the migrations create
#: it and `alembic check` knows it; the job store finds it already there. job_state is APScheduler's
#: pickle of a job: the function's import path and plain arguments (the job id), never settings.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class Alert(Base):
    """One event people are told about, once: its key (``urgent:lead:12``, ``sla:lead:12:<due>``,
    ``health:<platform>:<rule>:<first run>``) is unique, so deriving it again adds nothing.

    ``title`` and ``body`` are plain text in Chinese; crawled text inside them is bounded when the
    alert is made and escaped by each channel for its own format (verify/alerts/formats.py).
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[AlertKind] = mapped_column(_enum(AlertKind, "kind"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    platform_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    deliveries: Mapped[list[AlertDelivery]] = relationship(order_by="AlertDelivery.channel", viewonly=True)


class AlertDelivery(Base):
    """The outbox of alerts: one row per alert and channel, sent, retried with backoff, or failed."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel"),
        Index("ix_alert_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    #: The channel's name in config.yaml ``alerts.channels``.
    channel: Mapped[str] = mapped_column(String(100))
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState, "state"), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]
    #: A delivery pass's lease while it sends: a crashed pass's lease simply expires.
    claim_expires_at: Mapped[datetime | None]

    alert: Mapped[Alert] = relationship()
