"""Knowledge gaps: what customers asked that the help center could not answer, grouped by
meaning and counted, so the business knows which article to write next.

A question counts when the bot declined it (the documents were silent) or when the customer
asked for a person right after it. Questions are grouped greedily: each joins the first group
whose opening question it is close enough to (cosine of the same embeddings retrieval uses),
else opens its own; groups are listed biggest first, each with a few example wordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.models import Conversation, Message, Role
from knowledge import default_embeddings

SIMILAR = 0.6
EXAMPLES = 3


@dataclass
class Gap:
    question: str  # the group's first question: its label
    count: int = 0
    examples: list[str] = field(default_factory=list)
    last_asked: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "count": self.count,
            "examples": self.examples,
            "last_asked": self.last_asked.isoformat() if self.last_asked else None,
        }


def unanswered_questions(
    *, session: Session, tenant_id: int, since: datetime
) -> list[tuple[str, datetime]]:
    """(question, when) for every declined bot reply and every escalation since ``since``."""
    declined = session.exec(
        select(Message).where(
            Message.tenant_id == tenant_id,
            Message.role == Role.BOT,
            col(Message.grounding).is_not(None),
            Message.created_at >= since,
        )
    ).all()
    found = [
        (str(m.grounding["query"]), m.created_at)
        for m in declined
        # Declined with no article to show: a policy quoted with a handoff is no gap.
        if m.grounding
        and m.grounding.get("refused")
        and not m.grounding.get("sources")
        and m.grounding.get("query")
    ]
    escalated = session.exec(
        select(Conversation).where(
            Conversation.tenant_id == tenant_id,
            col(Conversation.escalated_at).is_not(None),
            col(Conversation.escalated_at) >= since,
        )
    ).all()
    for conversation in escalated:
        assert conversation.escalated_at is not None
        asked = session.exec(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.role == Role.CUSTOMER,
                col(Message.created_at) <= conversation.escalated_at,
            )
            .order_by(col(Message.seq).desc())
            .limit(2)
        ).all()
        # The question before "can I talk to a person?", when there is one.
        if asked:
            found.append((asked[-1].text, asked[-1].created_at))
    return found


def group_gaps(questions: list[tuple[str, datetime]], limit: int = 20) -> list[Gap]:
    unique: dict[str, list[datetime]] = {}
    for text, when in questions:
        unique.setdefault(" ".join(text.split())[:500], []).append(when)
    texts = list(unique)
    if not texts:
        return []
    vectors = default_embeddings().embed(texts)
    leaders: list[int] = []
    gaps: list[Gap] = []
    for i, text in enumerate(texts):
        times = unique[text]
        match = next(
            (g for g, lead in enumerate(leaders) if float(vectors[i] @ vectors[lead]) >= SIMILAR),
            None,
        )
        if match is None:
            leaders.append(i)
            gaps.append(Gap(text))
            match = len(gaps) - 1
        gap = gaps[match]
        gap.count += len(times)
        if len(gap.examples) < EXAMPLES:
            gap.examples.append(text)
        newest = max(times)
        gap.last_asked = max(gap.last_asked, newest) if gap.last_asked else newest
    return sorted(gaps, key=lambda g: (-g.count, g.question))[:limit]
