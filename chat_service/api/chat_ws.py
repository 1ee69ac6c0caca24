"""The widget's WebSocket endpoint: handshake checks, then a ChatSession does the work."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket
from starlette.concurrency import run_in_threadpool

from chat_service.chat_session import ChatSession
from chat_service.connection_caps import TooManyConnectionsError
from chat_service.errors import CLOSE_TRY_AGAIN_LATER, close_for
from chat_service.rate_limit import client_address
from chat_service.services import Services
from core.crud.conversations import get_conversation_by_token
from core.crud.tenants import get_tenant_by_slug
from core.db import read_scope
from core.errors import DomainError, ForbiddenError, NotFoundError
from core.models import Conversation, Tenant

router = APIRouter()
log = logging.getLogger(__name__)


def _admit(
    services: Services, slug: str, token: str | None, origin: str | None
) -> tuple[Tenant, Conversation | None]:
    """The tenant and the conversation being resumed, or the reason the socket is refused."""
    with read_scope(services.db) as session:
        tenant = get_tenant_by_slug(session=session, slug=slug)
        if tenant is None or tenant.id is None:
            raise NotFoundError("unknown tenant")
        if tenant.allowed_origins and origin not in tenant.allowed_origins:
            log.warning("refused origin %s (tenant=%s)", origin, tenant.slug)
            raise ForbiddenError("origin not allowed")
        if not token:
            return tenant, None
        conversation = get_conversation_by_token(session=session, tenant_id=tenant.id, token=token)
        if conversation is None:
            raise NotFoundError("unknown conversation token")
        return tenant, conversation


@router.websocket("/v1/chat/ws")
async def chat_websocket(
    websocket: WebSocket,
    tenant: Annotated[str, Query(description="Tenant slug")] = "",
    token: Annotated[str | None, Query(description="Conversation token, to resume")] = None,
    last_seq: Annotated[
        int, Query(ge=0, description="Last sequence number the client has seen")
    ] = 0,
) -> None:
    services: Services = websocket.app.state.services
    # Accept first: a close before accepting becomes a bare HTTP 403 and the client never
    # learns the reason; after accepting, the close code and reason reach it.
    await websocket.accept()
    origin = websocket.headers.get("origin")
    try:
        tenant_row, conversation = await run_in_threadpool(_admit, services, tenant, token, origin)
    except DomainError as exc:
        await close_for(websocket, exc)
        return
    assert tenant_row.id is not None
    try:
        async with services.connection_caps.hold(client_address(websocket), tenant_row.id):
            await ChatSession(websocket, services, tenant_row).run(conversation, last_seq)
    except TooManyConnectionsError as exc:
        await websocket.close(CLOSE_TRY_AGAIN_LATER, str(exc))
