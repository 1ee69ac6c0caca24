"""Who is answering a conversation: the bot, a human, or nobody yet.

Every change of hands leaves a system message in the conversation, so the customer's widget,
the console and a later resume all show the same history, and the training loop (which never
trains on system turns) can see where a human took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from core.crud.conversations import append_message
from core.errors import InvalidError
from core.models import Conversation, ConversationStatus, Customer, Message, Role, utcnow

NOTICE_PREFIX = "notice:"


class NoticeKey(StrEnum):
    """The notices a change of hands leaves; widgets translate them, analytics counts them."""

    ESCALATED = "escalated"
    AGENT_JOINED = "agent_joined"
    HANDED_BACK = "handed_back"
    RESOLVED = "resolved"
    NO_AGENT = "no_agent"


def notice_key(message: Message) -> str | None:
    """The key of a system notice (its author is ``notice:<key>[:<arg>]``), else None."""
    author = message.author or ""
    if message.role != Role.SYSTEM or not author.startswith(NOTICE_PREFIX):
        return None
    return author.removeprefix(NOTICE_PREFIX).split(":", 1)[0]


@dataclass(frozen=True)
class Notice:
    """What the customer is told. ``key`` lets a widget show its own translation; ``arg`` is
    the one value such a string may need (an agent's name)."""

    key: str
    text: str
    arg: str = ""


def _notice(session: Session, conversation: Conversation, notice: Notice) -> Message:
    author = f"{NOTICE_PREFIX}{notice.key}" + (f":{notice.arg}" if notice.arg else "")
    message, _ = append_message(
        session=session,
        conversation=conversation,
        role=Role.SYSTEM,
        text=notice.text,
        author=author[:200],
    )
    return message


def escalate(
    *, session: Session, conversation: Conversation, reason: str, notice: Notice
) -> Message | None:
    """Ask for a human. Returns the notice, or None when a human already has it."""
    if conversation.status == ConversationStatus.ESCALATED:
        return None
    conversation.status = ConversationStatus.ESCALATED
    conversation.escalated_at = utcnow()
    conversation.escalation_reason = reason[:200]
    conversation.handoff_expired_at = None
    conversation.resolved_at = None
    session.add(conversation)
    return _notice(session, conversation, notice)


def take_over(
    *, session: Session, conversation: Conversation, agent_name: str, notice: Notice
) -> Message:
    """A human answers from now on; the bot stops replying."""
    conversation.status = ConversationStatus.ESCALATED
    conversation.assigned_agent = agent_name
    conversation.escalated_at = conversation.escalated_at or utcnow()
    conversation.failed_answers = 0
    conversation.resolved_at = None
    session.add(conversation)
    return _notice(session, conversation, notice)


def hand_back(*, session: Session, conversation: Conversation, notice: Notice) -> Message:
    """The bot answers again."""
    conversation.status = ConversationStatus.OPEN
    conversation.assigned_agent = None
    conversation.escalated_at = None
    conversation.escalation_reason = None
    conversation.handoff_expired_at = None
    conversation.failed_answers = 0
    session.add(conversation)
    return _notice(session, conversation, notice)


def resolve(*, session: Session, conversation: Conversation, notice: Notice) -> Message:
    conversation.status = ConversationStatus.RESOLVED
    conversation.resolved_at = utcnow()
    conversation.assigned_agent = None
    session.add(conversation)
    return _notice(session, conversation, notice)


def expired_handoffs(
    *, session: Session, escalated_before: datetime, limit: int = 100
) -> list[Conversation]:
    """Escalations nobody has claimed in time and whose customer has not been told yet."""
    return list(
        session.exec(
            select(Conversation)
            .where(
                Conversation.status == ConversationStatus.ESCALATED,
                col(Conversation.assigned_agent).is_(None),
                col(Conversation.handoff_expired_at).is_(None),
                col(Conversation.escalated_at) < escalated_before,
            )
            .order_by(col(Conversation.id))
            .limit(limit)
        ).all()
    )


def mark_handoff_expired(
    *, session: Session, conversation: Conversation, notice: Notice
) -> Message:
    conversation.handoff_expired_at = utcnow()
    session.add(conversation)
    return _notice(session, conversation, notice)


def record_failed_answer(*, session: Session, conversation: Conversation) -> int:
    conversation.failed_answers += 1
    session.add(conversation)
    return conversation.failed_answers


class FeedbackError(InvalidError):
    pass


def rate_bot_message(
    *, session: Session, conversation: Conversation, message_id: int, rating: int
) -> Message:
    """The customer's thumbs up (1) or down (-1) on one of the bot's replies."""
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id or message.role != Role.BOT:
        raise FeedbackError(f"message {message_id} is not a bot reply in this conversation")
    if rating not in (-1, 1):
        raise FeedbackError("rating must be 1 (up) or -1 (down)")
    message.customer_rating = rating
    conversation.updated_at = utcnow()  # analytics refresh picks changed conversations up
    session.add_all([message, conversation])
    return message


def set_csat(*, session: Session, conversation: Conversation, score: int) -> None:
    if conversation.status != ConversationStatus.RESOLVED:
        raise FeedbackError("CSAT can be given once the conversation is resolved")
    if not 1 <= score <= 5:
        raise FeedbackError("CSAT score must be 1 to 5")
    conversation.csat = score
    conversation.updated_at = utcnow()
    session.add(conversation)


def leave_contact(*, session: Session, conversation: Conversation, email: str) -> Customer:
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or any(c.isspace() for c in email):
        raise FeedbackError(f"not an email address: {email!r}")
    if conversation.customer_id is None:
        raise FeedbackError("this conversation has no customer to attach an email to")
    customer = session.get(Customer, conversation.customer_id)
    assert customer is not None
    customer.email = email
    session.add(customer)
    return customer
