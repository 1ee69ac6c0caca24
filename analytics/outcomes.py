"""Outcome metrics: did each adapter version cut cost and wait times and raise satisfaction?

Definitions (one conversation c; "visible" = not an internal note; W =
SUPPORTLOOP_ANALYTICS_FOLLOWUP_WINDOW_H):

* CSAT: mean of c.csat over conversations that have one (1-5).
* resolution rate: share of conversations resolved with no customer follow-up, i.e. c is
  resolved and no customer message came within W after a resolution of c (a follow-up reopens
  the conversation; it stays counted as followed-up even if it is resolved again).
* deflection: share of conversations resolved without any visible agent message.
* escalation rate: share of conversations handed to a human (a handoff notice, an agent
  joining, or status escalated).
* first response time: from c's first customer message to the first visible bot or agent
  message after it (provider timestamps for imported history).
* handle time: from c's first message to its resolution, for resolved conversations.
* suggestion acceptance / edit rate: accepted / edited drafts over all drafts an agent decided
  (assist mode), per conversation of the draft.
* thumbs-down rate: bot replies rated down over bot replies.

A conversation counts on the day it started and under the adapter version of its first bot
reply (0: the base model, -1: the bot never answered); segments are its channel, its language
(primary subtag), the customer's tier and whether the customer is verified.

Classification (eval/classification.py) of the product's two yes/no calls, against what
actually happened:

* escalation: predicted "needs a human" when the handoff rules fired (keywords, the button,
  failed answers); actual when an agent sent a visible message.
* resolution: predicted "resolved" when the bot had the last visible word and no handoff
  happened; actual = resolved with no follow-up (above).

Incremental: every conversation has a fact row holding its bucket and measures. A refresh
reads only conversations updated since the tenant's watermark, takes each one's old
contribution out of its rollup bucket and adds the new one, so the dashboard reads rollups
whose size does not grow with messages. Run one refresher per database (serve does).
"""

from __future__ import annotations

import bisect
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, col, delete, select

from core.crud.handoff import NoticeKey, notice_key
from core.db import read_scope, session_scope
from core.models import (
    BASE_MODEL_KEY,
    NO_BOT_KEY,
    Conversation,
    ConversationFact,
    ConversationStatus,
    Customer,
    Message,
    OutcomeRollup,
    Role,
    Suggestion,
    SuggestionStatus,
    SyncCursor,
    Tenant,
    utcnow,
)
from core.settings import Settings
from eval import ClassificationReport, report_from_counts

WATERMARK_PROVIDER = "analytics"
OVERLAP = timedelta(seconds=5)  # commits land slightly out of updated_at order
# Histogram bounds in seconds for first-response and handle times (the last bucket is open).
TIME_BOUNDS = (5, 15, 30, 60, 120, 300, 900, 3600, 14400, 86400, 259200, 604800)
SEGMENTS = ("channel", "language", "tier", "verified")

Measures = dict[str, float]


@dataclass(frozen=True)
class Bucket:
    day: date
    adapter_key: int
    channel: str
    language: str
    tier: str
    verified: bool

    def as_json(self) -> dict[str, object]:
        return {**self.__dict__, "day": self.day.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bucket:
        return cls(**{**data, "day": date.fromisoformat(data["day"])})


def _histogram(prefix: str, seconds: float) -> Measures:
    index = bisect.bisect_left(TIME_BOUNDS, seconds)
    return {f"{prefix}_sum": seconds, f"{prefix}_count": 1, f"{prefix}_h{index}": 1}


def conversation_facts(
    conversation: Conversation,
    messages: Sequence[Message],
    suggestions: Sequence[Suggestion],
    customer: Customer | None,
    followup_window: timedelta,
) -> tuple[Bucket, Measures]:
    """The bucket and measures of one conversation (messages in sequence order)."""
    visible = [m for m in messages if not m.internal_note]
    customer_msgs = [m for m in visible if m.role == Role.CUSTOMER]
    bots = [m for m in visible if m.role == Role.BOT]
    agents = [m for m in visible if m.role == Role.AGENT]
    notices = [(notice_key(m), m.sent_at) for m in visible]
    rule_fired = any(key == NoticeKey.ESCALATED for key, _ in notices)
    handoff = rule_fired or any(key == NoticeKey.AGENT_JOINED for key, _ in notices)
    escalated = handoff or conversation.status == ConversationStatus.ESCALATED
    resolved = conversation.status == ConversationStatus.RESOLVED
    resolutions = [at for key, at in notices if key == NoticeKey.RESOLVED]
    followed_up = any(
        t < m.sent_at <= t + followup_window for t in resolutions for m in customer_msgs
    )
    resolved_clean = resolved and not followed_up
    talk = [m for m in visible if m.role in (Role.CUSTOMER, Role.BOT, Role.AGENT)]
    bot_claims = bool(talk) and talk[-1].role == Role.BOT and not escalated
    needed_human = bool(agents)

    measures: Measures = {
        "conversations": 1,
        "messages": len(messages),
        "resolved": int(resolved),
        "resolved_no_followup": int(resolved_clean),
        "deflected": int(resolved and not agents),
        "escalated": int(escalated),
        "bot_replies": len(bots),
        "thumbs_down": sum(m.customer_rating == -1 for m in bots),
        "thumbs_up": sum(m.customer_rating == 1 for m in bots),
        f"esc_{'t' if rule_fired == needed_human else 'f'}{'p' if rule_fired else 'n'}": 1,
        f"res_{'t' if bot_claims == resolved_clean else 'f'}{'p' if bot_claims else 'n'}": 1,
    }
    if conversation.csat is not None:
        measures |= {"csat_sum": conversation.csat, "csat_count": 1}
    if customer_msgs:
        first = customer_msgs[0]
        answer = next(
            (m for m in visible if m.seq > first.seq and m.role in (Role.BOT, Role.AGENT)), None
        )
        if answer is not None:
            measures |= _histogram("frt", (answer.sent_at - first.sent_at).total_seconds())
    if resolved and conversation.resolved_at is not None and messages:
        start = min(m.sent_at for m in messages)
        measures |= _histogram(
            "handle", max(0.0, (conversation.resolved_at - start).total_seconds())
        )
    decided = [
        s
        for s in suggestions
        if s.reviewed_message_id is None and s.status != SuggestionStatus.PENDING
    ]
    if decided:
        measures["suggestions_decided"] = len(decided)
        measures["suggestions_accepted"] = sum(
            s.status == SuggestionStatus.ACCEPTED for s in decided
        )
        measures["suggestions_edited"] = sum(s.status == SuggestionStatus.EDITED for s in decided)

    adapter_key = NO_BOT_KEY
    if bots:
        adapter_key = bots[0].adapter_version_id or BASE_MODEL_KEY
    bucket = Bucket(
        day=conversation.created_at.date(),
        adapter_key=adapter_key,
        channel=conversation.channel or "unknown",
        language=(conversation.language or "unknown").split("-")[0].lower()[:16],
        tier=(customer.tier if customer and customer.tier else "none"),
        verified=bool(customer and customer.verified),
    )
    return bucket, measures


# -- keeping rollups current ----------------------------------------------------------------


class _Rollups:
    """The rollup rows one refresh touches, looked up once each."""

    def __init__(self, session: Session, tenant_id: int) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._rows: dict[Bucket, OutcomeRollup] = {}

    def _row(self, bucket: Bucket) -> OutcomeRollup:
        row = self._rows.get(bucket)
        if row is None:
            row = self._session.exec(
                select(OutcomeRollup).where(
                    OutcomeRollup.tenant_id == self._tenant_id,
                    OutcomeRollup.day == bucket.day,
                    OutcomeRollup.adapter_key == bucket.adapter_key,
                    OutcomeRollup.channel == bucket.channel,
                    OutcomeRollup.language == bucket.language,
                    OutcomeRollup.tier == bucket.tier,
                    OutcomeRollup.verified == bucket.verified,
                )
            ).first() or OutcomeRollup(tenant_id=self._tenant_id, **bucket.__dict__, sums={})
            self._rows[bucket] = row
        return row

    def add(self, bucket: Bucket, measures: Measures, sign: int) -> None:
        row = self._row(bucket)
        sums = dict(row.sums)
        for key, value in measures.items():
            sums[key] = sums.get(key, 0) + sign * value
            if abs(sums[key]) < 1e-9:
                del sums[key]
        row.sums = sums  # a new dict: JSON columns only notice reassignment

    def flush(self) -> None:
        """Write the touched rows; empty buckets are deleted."""
        for row in self._rows.values():
            if row.sums.get("conversations"):
                self._session.add(row)
            elif row.id is not None:
                self._session.delete(row)
        self._session.flush()
        self._rows.clear()


def _fold(
    session: Session,
    tenant_id: int,
    conversations: list[Conversation],
    followup_window: timedelta,
    totals: _Rollups,
) -> None:
    ids = [c.id for c in conversations if c.id is not None]
    messages: defaultdict[int, list[Message]] = defaultdict(list)
    for message in session.exec(
        select(Message)
        .where(col(Message.conversation_id).in_(ids))
        .order_by(col(Message.conversation_id), col(Message.seq))
    ):
        messages[message.conversation_id].append(message)
    suggestions: defaultdict[int, list[Suggestion]] = defaultdict(list)
    for suggestion in session.exec(
        select(Suggestion).where(col(Suggestion.conversation_id).in_(ids))
    ):
        suggestions[suggestion.conversation_id].append(suggestion)
    customer_ids = {c.customer_id for c in conversations if c.customer_id}
    customers = {
        c.id: c for c in session.exec(select(Customer).where(col(Customer.id).in_(customer_ids)))
    }
    old_facts = {
        f.conversation_id: f
        for f in session.exec(
            select(ConversationFact).where(col(ConversationFact.conversation_id).in_(ids))
        )
    }
    for conversation in conversations:
        assert conversation.id is not None
        bucket, measures = conversation_facts(
            conversation,
            messages[conversation.id],
            suggestions[conversation.id],
            customers.get(conversation.customer_id),
            followup_window,
        )
        fact = old_facts.get(conversation.id)
        if fact is not None:
            totals.add(Bucket.from_json(fact.bucket), fact.measures, -1)
        else:
            fact = ConversationFact(conversation_id=conversation.id, tenant_id=tenant_id)
        totals.add(bucket, measures, +1)
        fact.bucket, fact.measures, fact.computed_at = bucket.as_json(), measures, utcnow()
        session.add(fact)


def _forget_erased(session: Session, tenant_id: int, totals: _Rollups) -> None:
    """Facts whose conversation was deleted (erasure) still hold a contribution: take it out."""
    orphans = session.exec(
        select(ConversationFact).where(
            ConversationFact.tenant_id == tenant_id, col(ConversationFact.conversation_id).is_(None)
        )
    ).all()
    for fact in orphans:
        totals.add(Bucket.from_json(fact.bucket), fact.measures, -1)
        session.delete(fact)


def _lock_tenant(session: Session, tenant_id: int) -> None:
    # One refresher per tenant at a time: the tenant row lock serialises them on PostgreSQL
    # (SQLite's BEGIN IMMEDIATE already does), so no change is ever folded in twice.
    session.exec(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update()).first()


def refresh_outcomes(
    *,
    session: Session,
    tenant_id: int,
    followup_window: timedelta,
    batch: int = 500,
    commit_each_page: bool = False,
) -> int:
    """Fold every conversation changed since the last refresh into the rollups; returns how
    many were (re)computed. ``commit_each_page``: each page of ``batch`` conversations is
    committed on its own, so a large tenant's refresh never holds the write lock for long
    (customers' acks wait behind it on SQLite). The watermark moves only with the last page;
    a refresh cut short is redone, harmlessly: a conversation's fact replaces its previous
    contribution to the rollups rather than adding to it."""
    _lock_tenant(session, tenant_id)
    cursor = session.exec(
        select(SyncCursor).where(
            SyncCursor.tenant_id == tenant_id, SyncCursor.provider == WATERMARK_PROVIDER
        )
    ).first()
    mark = datetime.fromisoformat(json.loads(cursor.cursor)["updated_at"]) if cursor else None
    totals = _Rollups(session, tenant_id)
    _forget_erased(session, tenant_id, totals)
    done = 0
    newest = mark
    last_id = 0
    since = mark - OVERLAP if mark else None
    while True:
        query = select(Conversation).where(Conversation.tenant_id == tenant_id)
        if since is not None:
            query = query.where(col(Conversation.updated_at) > since)
        page = list(
            session.exec(
                query.where(col(Conversation.id) > last_id)
                .order_by(col(Conversation.id))
                .limit(batch)
            )
        )
        if not page:
            break
        _fold(session, tenant_id, page, followup_window, totals)
        totals.flush()
        if commit_each_page:
            session.commit()
            # SQLite has no queue for its write lock: a writer waiting on it polls (every
            # 100 ms once it has waited a while), and would starve behind pages that re-take
            # the lock at once. The pause lets customers' acks in between pages.
            time.sleep(PAGE_PAUSE_S)
            _lock_tenant(session, tenant_id)
        done += len(page)
        last_id = page[-1].id or last_id
        page_newest = max(c.updated_at for c in page)
        newest = page_newest if newest is None else max(newest, page_newest)
    totals.flush()
    if newest is not None:
        value = json.dumps({"updated_at": newest.isoformat()})
        if cursor is None:
            cursor = SyncCursor(tenant_id=tenant_id, provider=WATERMARK_PROVIDER, cursor=value)
        cursor.cursor, cursor.updated_at = value, utcnow()
        session.add(cursor)
    return done


# A page of a serving process's refresh holds SQLite's write lock for about 0.1 s.
REFRESH_PAGE = 100
PAGE_PAUSE_S = 0.15


def refresh_tenant(db: DbEngine, tenant_id: int, settings: Settings) -> int:
    """refresh_outcomes in short transactions, with the configured follow-up window."""
    with session_scope(db) as session:
        return refresh_outcomes(
            session=session,
            tenant_id=tenant_id,
            followup_window=timedelta(hours=settings.analytics_followup_window_h),
            batch=REFRESH_PAGE,
            commit_each_page=True,
        )


def refresh_all_tenants(db: DbEngine, settings: Settings) -> None:
    """Every tenant's rollups, each in its own transactions (serve's refresh loop)."""
    with read_scope(db) as session:
        tenant_ids = [t for t in session.exec(select(Tenant.id)) if t is not None]
    for tenant_id in tenant_ids:
        refresh_tenant(db, tenant_id, settings)


def rebuild_outcomes(*, session: Session, tenant_id: int, followup_window: timedelta) -> int:
    """Recompute everything from scratch (what the incremental path must always equal)."""
    session.exec(delete(OutcomeRollup).where(col(OutcomeRollup.tenant_id) == tenant_id))
    session.exec(delete(ConversationFact).where(col(ConversationFact.tenant_id) == tenant_id))
    session.exec(
        delete(SyncCursor).where(
            col(SyncCursor.tenant_id) == tenant_id, col(SyncCursor.provider) == WATERMARK_PROVIDER
        )
    )
    session.flush()
    return refresh_outcomes(session=session, tenant_id=tenant_id, followup_window=followup_window)


# -- reading them -----------------------------------------------------------------------------


def _percentile(sums: Measures, prefix: str, q: float) -> float | None:
    """Upper bound of the histogram bucket holding the q-quantile (None: no data). Beyond the
    last bound (a week) it reads as that bound: a lower limit, but a JSON-safe number."""
    count = sums.get(f"{prefix}_count", 0)
    if not count:
        return None
    seen = 0.0
    for index in range(len(TIME_BOUNDS) + 1):
        seen += sums.get(f"{prefix}_h{index}", 0)
        if seen >= q * count:
            return float(TIME_BOUNDS[min(index, len(TIME_BOUNDS) - 1)])
    return float(TIME_BOUNDS[-1])


def _share(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def rates(sums: Measures) -> dict[str, float | None]:
    """The published metrics from summed measures (see the module docstring)."""
    n = sums.get("conversations", 0)
    decided = sums.get("suggestions_decided", 0)
    return {
        "conversations": n,
        "csat": _share(sums.get("csat_sum", 0), sums.get("csat_count", 0)),
        "resolution_rate": _share(sums.get("resolved_no_followup", 0), n),
        "deflection_rate": _share(sums.get("deflected", 0), n),
        "escalation_rate": _share(sums.get("escalated", 0), n),
        "first_response_mean_s": _share(sums.get("frt_sum", 0), sums.get("frt_count", 0)),
        "first_response_p50_s": _percentile(sums, "frt", 0.5),
        "first_response_p90_s": _percentile(sums, "frt", 0.9),
        "handle_time_mean_s": _share(sums.get("handle_sum", 0), sums.get("handle_count", 0)),
        "handle_time_p50_s": _percentile(sums, "handle", 0.5),
        "handle_time_p90_s": _percentile(sums, "handle", 0.9),
        "suggestion_acceptance_rate": _share(sums.get("suggestions_accepted", 0), decided),
        "suggestion_edit_rate": _share(sums.get("suggestions_edited", 0), decided),
        "thumbs_down_rate": _share(sums.get("thumbs_down", 0), sums.get("bot_replies", 0)),
    }


def classification(sums: Measures) -> dict[str, ClassificationReport]:
    return {
        name: report_from_counts(
            tp=int(sums.get(f"{prefix}_tp", 0)),
            fp=int(sums.get(f"{prefix}_fp", 0)),
            fn=int(sums.get(f"{prefix}_fn", 0)),
            tn=int(sums.get(f"{prefix}_tn", 0)),
            positive=positive,
            negative=negative,
        )
        for name, prefix, positive, negative in (
            ("escalation", "esc", "needs a human", "bot can handle"),
            ("resolution", "res", "resolved", "not resolved"),
        )
    }


def total(rows: Iterable[OutcomeRollup]) -> Measures:
    sums: Measures = defaultdict(float)
    for row in rows:
        for key, value in row.sums.items():
            sums[key] += value
    return dict(sums)


def rollups(
    *, session: Session, tenant_id: int, since: date | None = None, until: date | None = None
) -> list[OutcomeRollup]:
    query = select(OutcomeRollup).where(OutcomeRollup.tenant_id == tenant_id)
    if since is not None:
        query = query.where(col(OutcomeRollup.day) >= since)
    if until is not None:
        query = query.where(col(OutcomeRollup.day) <= until)
    return list(session.exec(query))


def grouped(rows: Iterable[OutcomeRollup], *keys: str) -> dict[tuple[Any, ...], Measures]:
    """Sums per combination of bucket fields (e.g. "day", "adapter_key")."""
    groups: defaultdict[tuple[Any, ...], list[OutcomeRollup]] = defaultdict(list)
    for row in rows:
        groups[tuple(getattr(row, k) for k in keys)].append(row)
    return {key: total(members) for key, members in groups.items()}
