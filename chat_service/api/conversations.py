"""Conversations and messages for a tenant's own integrations and agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from chat_service.agent_desk import send_agent_message
from chat_service.deps import CurrentTenant, ServicesDep, SessionDep
from chat_service.schemas import (
    AgentMessageCreate,
    ConversationPublic,
    ConversationsPage,
    MessagePublic,
    MessagesPage,
)
from core.crud.conversations import (
    list_conversations,
    list_messages,
    require_conversation,
)
from core.models import ConversationStatus

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


@router.get("", response_model=ConversationsPage)
def get_conversations(
    session: SessionDep,
    tenant: CurrentTenant,
    status_filter: Annotated[ConversationStatus | None, Query(alias="status")] = None,
    before: Annotated[
        int | None, Query(ge=1, description="Only conversations with a smaller id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConversationsPage:
    """Newest first."""
    assert tenant.id is not None
    rows = list_conversations(
        session=session, tenant_id=tenant.id, status=status_filter, before_id=before, limit=limit
    )
    items = [ConversationPublic.model_validate(row) for row in rows]
    return ConversationsPage(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.get("/{conversation_id}/messages", response_model=MessagesPage)
def get_messages(
    conversation_id: int,
    session: SessionDep,
    tenant: CurrentTenant,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> MessagesPage:
    """Oldest first, including internal notes."""
    assert tenant.id is not None
    require_conversation(session=session, tenant_id=tenant.id, conversation_id=conversation_id)
    rows = list_messages(
        session=session, conversation_id=conversation_id, after_seq=after_seq, limit=limit
    )
    return MessagesPage(items=[MessagePublic.model_validate(row) for row in rows])


@router.post(
    "/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessagePublic,
)
async def post_agent_message(
    conversation_id: int,
    body: AgentMessageCreate,
    tenant: CurrentTenant,
    services: ServicesDep,
) -> MessagePublic:
    """Send an agent message; it reaches the customer's open widget at once."""
    assert tenant.id is not None
    message = await send_agent_message(
        services,
        tenant_id=tenant.id,
        conversation_id=conversation_id,
        text=body.text,
        author=body.author,
        internal_note=body.internal_note,
        client_id=body.client_id,
    )
    return MessagePublic.model_validate(message)
