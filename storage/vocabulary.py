"""The domain vocabulary: every term the stages share (states, actions, reasons, kinds) and its Chinese label.

Defined once, here in storage because every stage imports storage and storage imports no stage. The
database keeps these values in plain strings with a CHECK constraint per column (storage.models,
migration 0016), so a value not listed here cannot be stored. A value added here needs a migration
that widens those constraints.
"""

from __future__ import annotations

import enum


class DetectionStatus(enum.StrEnum):
    """posts.detection_status: whether detection has read the post yet.

    A post judged a lead waits CLASSIFIED until merging (one worker at a time, in post order) joins it
    to a lead: classifying runs on many workers, merging must see every earlier lead (issue #18)."""

    NEW = "new"
    CLASSIFIED = "classified"
    DETECTED = "detected"


class LeadState(enum.StrEnum):
    """leads.state; verify.workflow.TRANSITIONS says which action moves a lead from one to another."""

    NEW = "new"
    CLAIMED = "claimed"
    VERIFIED = "verified"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    MERGED = "merged"


#: Leads that still stand for a problem: neither rejected nor merged into another. Detection adds new
#: evidence to these, and the stage counts (`make demo`, the dashboard) count them.
LIVE_STATES = (LeadState.NEW, LeadState.CLAIMED, LeadState.VERIFIED, LeadState.PROMOTED)
#: Leads waiting for an analyst's decision: on the SLA clock, counted as the queue's backlog, and the
#: only leads an analyst may merge another into.
AWAITING_DECISION_STATES = (LeadState.NEW, LeadState.CLAIMED)
#: Leads an analyst confirmed as real cases: verified, and promoted to a ticket since.
CONFIRMED_STATES = (LeadState.VERIFIED, LeadState.PROMOTED)
#: Leads an analyst decided on, either way: confirmed or rejected (merges say nothing of the text).
DECIDED_STATES = (*CONFIRMED_STATES, LeadState.REJECTED)

STATE_LABELS: dict[LeadState, str] = {
    LeadState.NEW: "待认领",
    LeadState.CLAIMED: "核实中",
    LeadState.VERIFIED: "已核实",
    LeadState.PROMOTED: "已派单",
    LeadState.REJECTED: "已驳回",
    LeadState.MERGED: "已合并",
}


class Priority(enum.StrEnum):
    URGENT = "urgent"
    ORDINARY = "ordinary"


PRIORITY_LABELS: dict[Priority, str] = {Priority.URGENT: "加急", Priority.ORDINARY: "普通"}


class RequestType(enum.StrEnum):
    """What a lead asks for: a problem to fix, a question to answer, or a suggestion."""

    PROBLEM = "problem"
    QUESTION = "question"
    SUGGESTION = "suggestion"


#: The analysts' names for the request types (UI, exports, reports).
REQUEST_TYPE_LABELS: dict[RequestType, str] = {
    RequestType.PROBLEM: "问题",
    RequestType.QUESTION: "咨询",
    RequestType.SUGGESTION: "建议",
}

#: Most pressing first. A problem needs someone to act; a suggestion may lead to action; a question
#: needs only an answer. The queue ranks leads of one priority in this order, and a lead whose posts
#: were typed differently takes the first of their types (classify.detection): one resident's
#: question cannot hide another's report that the thing is broken.
REQUEST_TYPE_ORDER: tuple[RequestType, ...] = (
    RequestType.PROBLEM,
    RequestType.SUGGESTION,
    RequestType.QUESTION,
)


class Action(enum.StrEnum):
    """audit_events.action: every act the audit trail records.

    The review workflow's acts come first (the state changes verify.workflow.TRANSITIONS allows, then
    notes and second confirmations); the others are recorded by the ticket, status-sync and platform
    pages' code.
    """

    CLAIM = "claim"
    RELEASE = "release"
    EXPIRE = "expire"
    VERIFY = "verify"
    PROMOTE = "promote"
    REJECT = "reject"
    MERGE = "merge"
    # Not state changes, but analysts' acts the audit trail keeps too.
    NOTE = "note"
    CONFIRM = "confirm"
    #: A failed ticket sent again (verify.tickets.repush).
    REPUSH = "repush"
    #: What the dispatch system says of a sent ticket changed (verify.sync).
    DISPATCH_STATUS = "dispatch_status"
    #: The dispatch system moved the case to another unit (verify.sync).
    DISPATCH_REASSIGNED = "dispatch_reassigned"
    #: An admin paused or resumed a platform (verify.web.platforms_pages).
    PAUSE_PLATFORM = "pause_platform"
    RESUME_PLATFORM = "resume_platform"


ACTION_LABELS: dict[Action, str] = {
    Action.CLAIM: "认领",
    Action.RELEASE: "放回队列",
    Action.EXPIRE: "认领过期",
    Action.VERIFY: "核实",
    Action.PROMOTE: "派单",
    Action.REJECT: "驳回",
    Action.MERGE: "合并",
    Action.NOTE: "备注",
    Action.CONFIRM: "二次确认",
    Action.REPUSH: "重新推送",
    Action.DISPATCH_STATUS: "办理状态更新",
    Action.DISPATCH_REASSIGNED: "改派",
    Action.PAUSE_PLATFORM: "暂停平台",
    Action.RESUME_PLATFORM: "恢复平台",
}


class RejectReason(enum.StrEnum):
    """Why an analyst rejected a lead (audit_events.reason of a reject); classify.feedback reads them."""

    NOT_A_COMPLAINT = "not_a_complaint"
    OUTSIDE_CITY = "outside_city"
    ALREADY_HANDLED = "already_handled"
    SPAM = "spam"
    DUPLICATE = "duplicate"


REJECT_REASON_LABELS: dict[RejectReason, str] = {
    RejectReason.NOT_A_COMPLAINT: "不是诉求",
    RejectReason.OUTSIDE_CITY: "不在本市",
    RejectReason.ALREADY_HANDLED: "已处理",
    RejectReason.SPAM: "垃圾信息",
    RejectReason.DUPLICATE: "重复",
}


class TicketState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    # An urgent lead's ticket waiting for a second analyst's confirmation; the pusher sends only QUEUED.
    UNCONFIRMED = "unconfirmed"


#: Tickets the dispatch system took: sent, and acknowledged since.
ACCEPTED_TICKET_STATES = (TicketState.SENT, TicketState.ACKNOWLEDGED)

TICKET_STATE_LABELS: dict[TicketState, str] = {
    TicketState.QUEUED: "待推送",
    TicketState.SENT: "已发送",
    TicketState.ACKNOWLEDGED: "已受理",
    TicketState.FAILED: "推送失败",
    TicketState.UNCONFIRMED: "待二次确认",
}


class ReconcileOutcome(enum.StrEnum):
    """What looking a ticket up at the dispatch system (after a push with no answer) showed."""

    FOUND_BY_ATTRIBUTE = "found_by_attribute"  # the server filtered on attribute[idempotency_key]
    FOUND_BY_DESCRIPTION = "found_by_description"  # our reference in a description in the time window
    ABSENT = "absent"  # positively not there: the ticket may be sent again
    LOOKUP_FAILED = "lookup_failed"  # no answer to the lookup either: neither sent nor given up


class Role(enum.StrEnum):
    ANALYST = "analyst"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


ROLE_LABELS: dict[Role, str] = {Role.ANALYST: "分析员", Role.SUPERVISOR: "主管", Role.ADMIN: "管理员"}


class CrawlRunStatus(enum.StrEnum):
    """crawl_runs.status, as crawlers/extensions/crawl_runs.py and the runner write it."""

    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    #: The process running the crawl died before it could close the run.
    INTERRUPTED = "interrupted"


CRAWL_STATUS_LABELS: dict[CrawlRunStatus, str] = {
    CrawlRunStatus.RUNNING: "抓取中",
    CrawlRunStatus.OK: "正常",
    CrawlRunStatus.PARTIAL: "部分成功",
    CrawlRunStatus.FAILED: "失败",
    CrawlRunStatus.INTERRUPTED: "已中断",
}
#: Key of crawl_runs.stats naming the distributed sweep a run is one worker's share of (absent: the run
#: is the platform's whole crawl); crawlers/sweep_runs.py says how shares are settled.
SWEEP_STAT = "weisu/sweep"
#: Key of crawl_runs.stats set on each share once its sweep is settled: how many shares (not
#: interrupted) the platform's sweep had. Read as one run only then (verify/alerts/health.py).
SHARES_STAT = "weisu/sweep_shares"


class GapKind(enum.StrEnum):
    """What a lost request fetched: a listing page, a thread's detail page, or a page of a comment thread."""

    LISTING = "listing"
    DETAIL = "detail"
    THREAD = "thread"


class GapState(enum.StrEnum):
    """A crawl gap is open (fetched again by later runs) until it succeeds or is given up."""

    OPEN = "open"
    RECOVERED = "recovered"
    AGED_OUT = "aged_out"


class AccessStatus(enum.StrEnum):
    """Whether a platform let the crawler in, as its last run saw it (crawlers/walls.py recognises walls)."""

    OK = "ok"
    LOGIN_WALL = "login_wall"
    CAPTCHA = "captcha"
    COOKIE_EXPIRED = "cookie_expired"


#: The operators' names for the access statuses (web pages, `weisu platforms`).
ACCESS_STATUS_LABELS: dict[AccessStatus, str] = {
    AccessStatus.OK: "可访问",
    AccessStatus.LOGIN_WALL: "需要登录",
    AccessStatus.CAPTCHA: "遇到验证码",
    AccessStatus.COOKIE_EXPIRED: "Cookie 已失效",
}


class Jurisdiction(enum.StrEnum):
    """classifications.jurisdiction: whether a post is about this city (classify.jurisdiction decides;
    only "elsewhere" is dropped)."""

    OURS = "ours"
    ELSEWHERE = "elsewhere"
    UNKNOWN = "unknown"


class JobOutcome(enum.StrEnum):
    """How one scheduled job run ended (job_runs.outcome)."""

    OK = "ok"
    FAILED = "failed"
    #: Another scheduler held the job's lease: this one did not run it.
    SKIPPED = "skipped"
    #: Its time passed beyond the job's grace while no scheduler ran it: not run at all.
    MISSED = "missed"


#: The operators' names for the outcomes (web page, `weisu jobs`).
JOB_OUTCOME_LABELS: dict[JobOutcome, str] = {
    JobOutcome.OK: "成功",
    JobOutcome.FAILED: "失败",
    JobOutcome.SKIPPED: "跳过",
    JobOutcome.MISSED: "错过",
}


class AlertKind(enum.StrEnum):
    """What an alert is about (verify/alerts/events.py derives them; a channel may take only some)."""

    URGENT_LEAD = "urgent_lead"
    SLA_WARNING = "sla_warning"
    CRAWL_HEALTH = "crawl_health"
    #: A scheduled job that failed, or was missed beyond its grace time (job_runs).
    JOB_FAILED = "job_failed"


#: The people's names for the alert kinds (the alerts page, `weisu alerts`).
ALERT_KIND_LABELS: dict[AlertKind, str] = {
    AlertKind.URGENT_LEAD: "加急线索",
    AlertKind.SLA_WARNING: "时限将至",
    AlertKind.CRAWL_HEALTH: "抓取健康",
    AlertKind.JOB_FAILED: "定时任务失败",
}


class DeliveryState(enum.StrEnum):
    """One alert's delivery to one channel: waiting (or retrying), sent, or given up after its tries."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


DELIVERY_STATE_LABELS: dict[DeliveryState, str] = {
    DeliveryState.PENDING: "待发送",
    DeliveryState.SENT: "已发送",
    DeliveryState.FAILED: "发送失败",
}
