"""Knowledge gaps: declined questions and escalations, grouped by meaning, biggest first."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine as DbEngine

from analytics.dashboard import dashboard_data
from analytics.knowledge_gaps import group_gaps, unanswered_questions
from core.crud.conversations import append_message, start_conversation
from core.crud.handoff import Notice, NoticeKey, escalate
from core.db import session_scope
from core.models import Role, Tenant, utcnow
from core.settings import Settings
from knowledge import REFUSAL
from tests.factories import make_tenant


def declined(db: DbEngine, tenant_id: int, question: str) -> None:
    with session_scope(db) as session:
        conversation, _ = start_conversation(session=session, tenant_id=tenant_id)
        append_message(
            session=session, conversation=conversation, role=Role.CUSTOMER, text=question
        )
        append_message(
            session=session,
            conversation=conversation,
            role=Role.BOT,
            text=REFUSAL,
            grounding={"refused": True, "query": question, "sources": []},
        )


def test_declined_questions_are_grouped_by_meaning_and_counted(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    other, _ = make_tenant(db, "other")
    assert tenant.id and other.id
    for question in ["Do you sell matcha lattes?", "do you have matcha latte", "Matcha latte?"]:
        declined(db, tenant.id, question)
    declined(db, tenant.id, "Do you validate parking at the mall?")
    declined(db, other.id, "Do you sell matcha lattes?")  # another tenant's gap
    with session_scope(db) as session:  # answered, then the customer asked for a person
        conversation, _ = start_conversation(session=session, tenant_id=tenant.id)
        append_message(
            session=session, conversation=conversation, role=Role.CUSTOMER,
            text="Can I reserve a table for ten people on Saturday?",
        )  # fmt: skip
        escalate(
            session=session,
            conversation=conversation,
            reason="customer asked",
            notice=Notice(NoticeKey.ESCALATED, "A human agent will join."),
        )

    with session_scope(db) as session:
        asked = unanswered_questions(
            session=session, tenant_id=tenant.id, since=utcnow() - timedelta(days=1)
        )
    gaps = group_gaps(asked)
    assert [g.count for g in gaps] == [3, 1, 1]
    assert gaps[0].question == "Do you sell matcha lattes?"
    assert len(gaps[0].examples) == 3
    assert {g.question for g in gaps[1:]} == {
        "Do you validate parking at the mall?",
        "Can I reserve a table for ten people on Saturday?",
    }


def test_the_dashboard_lists_the_gaps(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    assert tenant.id
    declined(db, tenant.id, "Is there a student discount?")
    with session_scope(db) as session:
        row = session.get(Tenant, tenant.id)
        assert row is not None
        data = dashboard_data(session, row, Settings(_env_file=None), days=7)  # type: ignore[call-arg]
    assert [(g["question"], g["count"]) for g in data["knowledge_gaps"]] == [
        ("Is there a student discount?", 1)
    ]
