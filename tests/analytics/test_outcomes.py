"""Outcome metrics against hand-computed values, and incremental == full recomputation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, select

from analytics.outcomes import (
    classification,
    grouped,
    rates,
    rebuild_outcomes,
    refresh_outcomes,
    total,
)
from core.crud.conversations import append_message, start_conversation
from core.crud.handoff import Notice, escalate, rate_bot_message, set_csat, take_over
from core.crud.suggestions import Decision, create_suggestion, decide_suggestion
from core.db import session_scope
from core.models import (
    BASE_MODEL_KEY,
    NO_BOT_KEY,
    Conversation,
    ConversationStatus,
    Customer,
    Message,
    OutcomeRollup,
    Role,
)
from tests.factories import make_tenant

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
W = timedelta(hours=24)
RESOLVED = Notice("resolved", "Resolved.")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def say(session: Session, conversation: Conversation, role: Role, text: str, s: float) -> Message:
    message, _ = append_message(
        session=session, conversation=conversation, role=role, text=text, sent_at=at(s)
    )
    return message


def notice(session: Session, conversation: Conversation, key: str, s: float) -> None:
    append_message(
        session=session,
        conversation=conversation,
        role=Role.SYSTEM,
        text=key,
        author=f"notice:{key}",
        sent_at=at(s),
    )


def resolve_at(session: Session, conversation: Conversation, s: float) -> None:
    notice(session, conversation, "resolved", s)
    conversation.status = ConversationStatus.RESOLVED
    conversation.resolved_at = at(s)
    session.add(conversation)


def new(session: Session, tenant_id: int) -> Conversation:
    customer = Customer(tenant_id=tenant_id, verified=True)
    session.add(customer)
    session.flush()
    conversation, _ = start_conversation(
        session=session, tenant_id=tenant_id, customer_id=customer.id
    )
    return conversation


def conversation_a(session: Session, tenant_id: int) -> int:
    """The bot answers in 2 s, resolved at 60 s, CSAT 5."""
    c = new(session, tenant_id)
    say(session, c, Role.CUSTOMER, "Where is my latte?", 0)
    say(session, c, Role.BOT, "At the bar!", 2)
    resolve_at(session, c, 60)
    set_csat(session=session, conversation=c, score=5)
    return c.id  # type: ignore[return-value]


def conversation_b(session: Session, tenant_id: int) -> None:
    """Bot answers in 4 s (rated down), the customer asks for a human, an agent joins and
    answers, it is resolved, and the customer writes again within the window."""
    c = new(session, tenant_id)
    say(session, c, Role.CUSTOMER, "My order is wrong", 0)
    bot = say(session, c, Role.BOT, "Great!", 4)
    rate_bot_message(session=session, conversation=c, message_id=bot.id, rating=-1)  # type: ignore[arg-type]
    say(session, c, Role.CUSTOMER, "A human please", 10)
    escalate(session=session, conversation=c, reason="asked", notice=Notice("escalated", "…"))
    take_over(session=session, conversation=c, agent_name="Sam", notice=Notice("agent_joined", "…"))
    say(session, c, Role.AGENT, "Fixing it", 40)
    resolve_at(session, c, 100)
    say(session, c, Role.CUSTOMER, "Still wrong!", 200)
    c.status = ConversationStatus.OPEN  # a follow-up reopens it
    session.add(c)


def conversation_c(session: Session, tenant_id: int) -> int:
    """No bot: an agent answers after 120 s, resolved at 300 s, CSAT 2."""
    c = new(session, tenant_id)
    say(session, c, Role.CUSTOMER, "Refund please", 0)
    say(session, c, Role.AGENT, "Done", 120)
    resolve_at(session, c, 300)
    set_csat(session=session, conversation=c, score=2)
    return c.id  # type: ignore[return-value]


def conversation_d(session: Session, tenant_id: int) -> None:
    """Assist mode: four drafts; accepted, edited, rejected, one left pending."""
    c = new(session, tenant_id)
    question = say(session, c, Role.CUSTOMER, "Open on Sunday?", 0)
    drafts = [
        create_suggestion(
            session=session,
            conversation=c,
            reply_to=question,
            draft_text=f"draft {i}",
            adapter_version_id=None,
        )
        for i in range(4)
    ]
    for suggestion, decision, text in zip(
        drafts[:3],
        [Decision.ACCEPT, Decision.EDIT, Decision.REJECT],
        [None, "Yes, 9-5", None],
        strict=True,
    ):
        _, sent = decide_suggestion(
            session=session,
            tenant_id=tenant_id,
            suggestion_id=suggestion.id,  # type: ignore[arg-type]
            decision=decision,
            reviewer="Sam",
            text=text,
            reason="wrong hours" if decision == Decision.REJECT else None,
        )
        if sent is not None:
            sent.sent_at = at(30)
            session.add(sent)


def refreshed(db: DbEngine, tenant_id: int) -> list[OutcomeRollup]:
    with session_scope(db) as session:
        refresh_outcomes(session=session, tenant_id=tenant_id, followup_window=W)
    with session_scope(db) as session:
        return list(session.exec(select(OutcomeRollup)).all())


def test_metric_definitions_match_hand_computed_values(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    assert tenant.id is not None
    with session_scope(db) as session:
        conversation_a(session, tenant.id)
        conversation_b(session, tenant.id)
        conversation_c(session, tenant.id)
        conversation_d(session, tenant.id)
    rows = refreshed(db, tenant.id)
    overall = rates(total(rows))
    assert overall["conversations"] == 4
    assert overall["resolution_rate"] == 0.5  # A and C; B was followed up, D is open
    assert overall["deflection_rate"] == 0.25  # A: resolved without an agent
    assert overall["escalation_rate"] == 0.25  # B
    assert overall["csat"] == 3.5  # (5 + 2) / 2
    assert overall["first_response_mean_s"] == 39.0  # (2 + 4 + 120 + 30) / 4
    assert overall["first_response_p50_s"] == 5.0  # 2 and 4 fall in the <= 5 s bucket
    assert overall["first_response_p90_s"] == 120.0
    assert overall["handle_time_mean_s"] == 180.0  # (60 + 300) / 2
    assert overall["suggestion_acceptance_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert overall["suggestion_edit_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert overall["thumbs_down_rate"] == 0.5  # one of two bot replies

    by_adapter = {key[0]: rates(sums) for key, sums in grouped(rows, "adapter_key").items()}
    assert by_adapter[BASE_MODEL_KEY]["conversations"] == 2  # A and B: the bot answered
    assert by_adapter[NO_BOT_KEY]["conversations"] == 2  # C and D: humans only

    reports = classification(total(rows))
    escalation = reports["escalation"]  # A: tn, B: tp, C: fn, D: fn
    assert escalation.accuracy == 0.5
    assert escalation.per_class["needs a human"].precision == 1.0
    assert escalation.per_class["needs a human"].recall == pytest.approx(1 / 3)
    assert escalation.per_class["needs a human"].f1 == 0.5
    assert escalation.per_class["bot can handle"].precision == pytest.approx(1 / 3)
    assert escalation.per_class["bot can handle"].recall == 1.0
    assert escalation.macro_f1 == 0.5
    resolution = reports["resolution"]  # A: tp (bot had the last word), B: tn, C: fn, D: tn
    assert resolution.accuracy == 0.75
    assert resolution.per_class["resolved"].recall == 0.5


def snapshot(rows: list[OutcomeRollup]) -> dict[tuple[object, ...], dict[str, float]]:
    return {
        (r.day, r.adapter_key, r.channel, r.language, r.tier, r.verified): {
            k: round(v, 6) for k, v in r.sums.items()
        }
        for r in rows
    }


def test_incremental_refreshes_equal_a_full_recomputation(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    assert tenant.id is not None
    with session_scope(db) as session:
        a = conversation_a(session, tenant.id)
        conversation_b(session, tenant.id)
    refreshed(db, tenant.id)
    with session_scope(db) as session:  # later: new conversations, and old ones change
        c = conversation_c(session, tenant.id)
        conversation_d(session, tenant.id)
        first = session.get(Conversation, a)
        assert first is not None
        bot = session.exec(
            select(Message).where(Message.conversation_id == a, Message.role == Role.BOT)
        ).one()
        rate_bot_message(session=session, conversation=first, message_id=bot.id, rating=-1)  # type: ignore[arg-type]
        say(session, first, Role.CUSTOMER, "Actually, one more thing", 120)
    refreshed(db, tenant.id)
    with session_scope(db) as session:  # an erasure deletes a conversation outright
        session.delete(session.get(Conversation, c))
    incremental = snapshot(refreshed(db, tenant.id))

    with session_scope(db) as session:
        rebuild_outcomes(session=session, tenant_id=tenant.id, followup_window=W)
    with session_scope(db) as session:
        full = snapshot(list(session.exec(select(OutcomeRollup)).all()))
    assert incremental == full
    assert sum(s["conversations"] for s in full.values()) == 3
    assert sum(s.get("thumbs_down", 0) for s in full.values()) == 2
