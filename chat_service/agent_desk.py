"""What agents do to a conversation, shared by the console and the REST API: every action is
stored first, then published to the customer's widget and the tenant's consoles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from chat_service.frames import MessageEvent, SuggestionEvent, TypingEvent
from chat_service.handoff import HANDED_BACK, RESOLVED, agent_joined
from chat_service.services import Services
from chat_service.telemetry import CHAT_MESSAGES
from core.crud import handoff
from core.crud.conversations import append_message, require_conversation
from core.crud.suggestions import (
    Decision,
    decide_suggestion,
    review_bot_reply,
    settle_pending,
)
from core.db import session_scope
from core.models import Message, Role, Suggestion

T = TypeVar("T")


async def _in_transaction(services: Services, act: Callable[..., T], **kwargs: Any) -> T:
    """``act(session=..., **kwargs)`` in one transaction, off the event loop."""

    def run() -> T:
        with session_scope(services.db) as session:
            return act(session=session, **kwargs)

    return await run_in_threadpool(run)


async def send_agent_message(
    services: Services,
    *,
    tenant_id: int,
    conversation_id: int,
    text: str,
    author: str | None,
    internal_note: bool = False,
    client_id: str | None = None,
) -> Message:
    """Raises ConversationNotFoundError for another tenant's or an unknown conversation."""

    def store() -> tuple[Message, bool, list[Suggestion]]:
        with session_scope(services.db) as session:
            conversation = require_conversation(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id
            )
            message, created = append_message(
                session=session,
                conversation=conversation,
                role=Role.AGENT,
                text=text,
                author=author,
                internal_note=internal_note,
                client_id=client_id,
            )
            settled = []
            if created and not internal_note:
                settled = settle_pending(session=session, sent=message)
            return message, created, settled

    message, created, settled = await run_in_threadpool(store)
    if created and not internal_note:
        CHAT_MESSAGES.labels(Role.AGENT).inc()
    if created:
        services.hub.publish(
            tenant_id, conversation_id, MessageEvent.of(message), customer_visible=not internal_note
        )
    for suggestion in settled:
        services.hub.publish(
            tenant_id, conversation_id, SuggestionEvent.of(suggestion), customer_visible=False
        )
    return message


async def take_over(
    services: Services, *, tenant_id: int, conversation_id: int, agent: str
) -> None:
    await services.handoff.change(
        tenant_id,
        conversation_id,
        lambda s, c: handoff.take_over(
            session=s, conversation=c, agent_name=agent, notice=agent_joined(agent)
        ),
    )


async def hand_back(services: Services, *, tenant_id: int, conversation_id: int) -> None:
    await services.handoff.change(
        tenant_id,
        conversation_id,
        lambda s, c: handoff.hand_back(session=s, conversation=c, notice=HANDED_BACK),
    )
    # The bot picks the conversation up again if a customer question is waiting.
    services.responder.schedule(tenant_id=tenant_id, conversation_id=conversation_id)


async def resolve(services: Services, *, tenant_id: int, conversation_id: int) -> None:
    await services.handoff.change(
        tenant_id,
        conversation_id,
        lambda s, c: handoff.resolve(session=s, conversation=c, notice=RESOLVED),
    )


async def show_typing(
    services: Services, *, tenant_id: int, conversation_id: int, agent: str
) -> None:
    """The customer sees that an agent is composing. Checked like every other action:
    another tenant's conversation id is 404, never an event published under it."""
    await _in_transaction(
        services, require_conversation, tenant_id=tenant_id, conversation_id=conversation_id
    )
    services.hub.publish(tenant_id, conversation_id, TypingEvent(role="agent", author=agent))


async def decide(
    services: Services,
    *,
    tenant_id: int,
    suggestion_id: int,
    decision: Decision,
    reviewer: str,
    text: str | None,
    reason: str | None,
) -> Suggestion:
    """Raises SuggestionError with a reason an agent can act on."""
    suggestion, sent = await _in_transaction(
        services,
        decide_suggestion,
        tenant_id=tenant_id,
        suggestion_id=suggestion_id,
        decision=decision,
        reviewer=reviewer,
        text=text,
        reason=reason,
    )
    conversation_id = suggestion.conversation_id
    if sent is not None:
        services.hub.publish(tenant_id, conversation_id, MessageEvent.of(sent))
    services.hub.publish(
        tenant_id, conversation_id, SuggestionEvent.of(suggestion), customer_visible=False
    )
    return suggestion


async def review(
    services: Services,
    *,
    tenant_id: int,
    message_id: int,
    reviewer: str,
    corrected_text: str | None,
    reason: str | None,
) -> Suggestion:
    """An agent's verdict on a sent bot reply (the review queue); nothing is sent."""
    return await _in_transaction(
        services,
        review_bot_reply,
        tenant_id=tenant_id,
        message_id=message_id,
        reviewer=reviewer,
        corrected_text=corrected_text,
        reason=reason,
    )
