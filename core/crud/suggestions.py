"""The bot's drafts for agents (assist mode) and agents' reviews of replies already sent.

Both kinds are Suggestion rows because both are the same training signal: "for this customer
message, this is the reply a human approved". The nightly dataset reads accepted and edited
rows (final_text, or the draft when accepted unchanged); rejected rows keep the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, or_, select

from core.crud.conversations import append_message
from core.errors import ConflictError, NotFoundError
from core.models import Conversation, Message, Role, Suggestion, SuggestionStatus, utcnow


class Decision(StrEnum):
    ACCEPT = "accept"  # send the draft as it is
    EDIT = "edit"  # send the agent's edited text
    REJECT = "reject"  # send nothing; say why


class SuggestionError(ConflictError):
    pass


class SuggestionNotFoundError(NotFoundError):
    """Unknown, or another tenant's: the same answer for both (404)."""


def create_suggestion(
    *,
    session: Session,
    conversation: Conversation,
    reply_to: Message,
    draft_text: str,
    adapter_version_id: int | None,
    grounding: dict[str, Any] | None = None,
) -> Suggestion:
    assert conversation.id is not None and reply_to.id is not None
    suggestion = Suggestion(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.id,
        reply_to_message_id=reply_to.id,
        draft_text=draft_text,
        adapter_version_id=adapter_version_id,
        grounding=grounding,
    )
    session.add(suggestion)
    session.flush()
    return suggestion


def pending_suggestions(*, session: Session, conversation_id: int) -> Sequence[Suggestion]:
    return session.exec(
        select(Suggestion)
        .where(
            Suggestion.conversation_id == conversation_id,
            Suggestion.status == SuggestionStatus.PENDING,
        )
        .order_by(col(Suggestion.id))
    ).all()


def decide_suggestion(
    *,
    session: Session,
    tenant_id: int,
    suggestion_id: int,
    decision: Decision,
    reviewer: str,
    text: str | None = None,
    reason: str | None = None,
) -> tuple[Suggestion, Message | None]:
    """Record the agent's decision; accept and edit also send the reply to the customer."""
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None or suggestion.tenant_id != tenant_id:
        raise SuggestionNotFoundError(f"suggestion {suggestion_id} not found")
    if suggestion.status != SuggestionStatus.PENDING:
        raise SuggestionError(f"suggestion {suggestion_id} was already {suggestion.status}")
    conversation = session.get(Conversation, suggestion.conversation_id)
    assert conversation is not None  # suggestions are deleted with their conversation
    if decision == Decision.REJECT:
        if not (reason or "").strip():
            raise SuggestionError("say why the suggestion is rejected")
        suggestion.status = SuggestionStatus.REJECTED
        suggestion.reason = (reason or "").strip()[:1000]
        sent = None
    else:
        final = suggestion.draft_text if decision == Decision.ACCEPT else (text or "").strip()
        if not final:
            raise SuggestionError("the edited reply is empty")
        edited = decision == Decision.EDIT and final != suggestion.draft_text.strip()
        suggestion.status = SuggestionStatus.EDITED if edited else SuggestionStatus.ACCEPTED
        suggestion.final_text = final
        sent, _ = append_message(
            session=session,
            conversation=conversation,
            role=Role.AGENT,
            text=final,
            author=reviewer,
            client_id=f"suggestion-{suggestion.id}",
        )
        suggestion.sent_message_id = sent.id
    suggestion.reviewer = reviewer
    suggestion.reviewed_at = utcnow()
    conversation.updated_at = utcnow()  # analytics refresh picks changed conversations up
    session.add_all([suggestion, conversation])
    return suggestion, sent


def _question_for(session: Session, reply: Message) -> Message | None:
    """The last customer message before a reply: what the reply answered."""
    return session.exec(
        select(Message)
        .where(
            Message.conversation_id == reply.conversation_id,
            Message.role == Role.CUSTOMER,
            col(Message.seq) < reply.seq,
        )
        .order_by(col(Message.seq).desc())
    ).first()


def settle_pending(*, session: Session, sent: Message) -> list[Suggestion]:
    """An agent answered in their own words while drafts were pending. The newest draft counts
    as edited into what the agent sent (the human's reply to the same question is the best
    training target there is); older drafts answered questions the conversation has moved
    past and are rejected as superseded."""
    pending = list(pending_suggestions(session=session, conversation_id=sent.conversation_id))
    for suggestion in pending:
        newest = suggestion is pending[-1]
        suggestion.status = SuggestionStatus.EDITED if newest else SuggestionStatus.REJECTED
        suggestion.final_text = sent.text if newest else None
        suggestion.sent_message_id = sent.id if newest else None
        suggestion.reason = None if newest else "superseded by a later reply"
        suggestion.reviewer = sent.author
        suggestion.reviewed_at = utcnow()
        session.add(suggestion)
    return pending


@dataclass(frozen=True)
class ReviewItem:
    """A bot reply to look at again, with the customer message it answered."""

    message: Message
    question: Message | None
    conversation: Conversation


def review_queue(
    *, session: Session, tenant_id: int, low_csat: int = 2, limit: int = 50
) -> list[ReviewItem]:
    """Bot replies the customer rated down, or that are part of a conversation rated
    ``low_csat`` or lower, that no agent has reviewed yet; oldest first."""
    reviewed = select(Suggestion.reviewed_message_id).where(
        col(Suggestion.reviewed_message_id).is_not(None)
    )
    rows = session.exec(
        select(Message, Conversation)
        .join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
        .where(
            Message.tenant_id == tenant_id,
            Message.role == Role.BOT,
            or_(Message.customer_rating == -1, col(Conversation.csat) <= low_csat),
            col(Message.id).not_in(reviewed),
        )
        .order_by(col(Message.id))
        .limit(limit)
    ).all()
    items = []
    for message, conversation in rows:
        question = _question_for(session, message)
        items.append(ReviewItem(message=message, question=question, conversation=conversation))
    return items


def review_bot_reply(
    *,
    session: Session,
    tenant_id: int,
    message_id: int,
    reviewer: str,
    corrected_text: str | None,
    reason: str | None,
) -> Suggestion:
    """An agent's verdict on a sent bot reply: a corrected reply (trains as an edited
    suggestion), or no correction with a reason (kept out of training)."""
    message = session.get(Message, message_id)
    if message is None or message.tenant_id != tenant_id or message.role != Role.BOT:
        raise SuggestionNotFoundError(f"bot message {message_id} not found")
    question = _question_for(session, message)
    if question is None:
        raise SuggestionError(f"bot message {message_id} answers no customer message")
    corrected = (corrected_text or "").strip()
    if not corrected and not (reason or "").strip():
        raise SuggestionError("give a corrected reply or a reason")
    suggestion = Suggestion(
        tenant_id=tenant_id,
        conversation_id=message.conversation_id,
        reply_to_message_id=question.id,  # type: ignore[arg-type]
        draft_text=message.text,
        status=SuggestionStatus.EDITED if corrected else SuggestionStatus.REJECTED,
        final_text=corrected or None,
        reason=(reason or "").strip()[:1000] or None,
        reviewer=reviewer,
        adapter_version_id=message.adapter_version_id,
        reviewed_message_id=message.id,
        reviewed_at=utcnow(),
    )
    session.add(suggestion)
    session.flush()
    return suggestion
