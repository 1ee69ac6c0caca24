"""The agent console: its pages, its JSON API and its live WebSocket.

Everything here is scoped to the signed-in agent's tenant; conversations of other tenants are
404s. State-changing routes require the CSRF header (console_auth.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

from anyio import from_thread
from fastapi import APIRouter, HTTPException, Query, Request, Response, WebSocket, status
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from chat_service import agent_desk
from chat_service.console_auth import (
    COOKIE_NAME,
    Agent,
    CheckedAgent,
    csrf_token,
    load_agent,
    same_origin,
)
from chat_service.console_schemas import (
    ConsoleMessage,
    ConversationDetail,
    ConversationSummary,
    Login,
    Me,
    ReviewItemPublic,
    ReviewVerdict,
    SuggestionDecision,
    SuggestionPublic,
)
from chat_service.deps import ServicesDep
from chat_service.errors import CLOSE_TRY_AGAIN_LATER, close_for
from chat_service.frames import ReadyEvent
from chat_service.hub import Subscription
from chat_service.rate_limit import client_address
from chat_service.schemas import MessagePublic
from chat_service.telemetry import CONNECTIONS
from core.crud.agents import authenticate_agent, end_agent_session, start_agent_session
from core.crud.conversations import (
    last_messages,
    list_messages,
    recently_active,
    require_conversation,
)
from core.crud.suggestions import pending_suggestions, review_queue
from core.crud.tenants import get_tenant_by_slug
from core.db import read_scope, session_scope
from core.errors import ForbiddenError
from core.models import Conversation, ConversationStatus, Customer, Message, Tenant

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
_STATIC = Path(__file__).parent.parent / "static"


def _page(name: str) -> HTMLResponse:
    # Strict CSP: the console runs only its own script and never loads remote content.
    return HTMLResponse(
        (_STATIC / name).read_text(),
        headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/console")
def console_page() -> HTMLResponse:
    return _page("console.html")


@router.get("/console/login")
def login_page() -> HTMLResponse:
    return _page("login.html")


@router.get("/console/console.js")
def console_script() -> Response:
    return Response((_STATIC / "console.js").read_text(), media_type="text/javascript")


# -- sign in ------------------------------------------------------------------------------


@router.post("/console/api/login")
def login(body: Login, request: Request, response: Response, services: ServicesDep) -> Me:
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="cross-site sign-in refused")
    # Password guessing: a few attempts a minute per account and per client address.
    client = client_address(request)
    wait = from_thread.run(
        services.rate_limiter.take,
        [
            ("login-account", f"{body.tenant.strip().lower()}/{body.email.strip().lower()}", 5.0),
            ("login-ip", client, 20.0),
        ],
    )
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many sign-in attempts; try again in {wait:.0f} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    with session_scope(services.db) as session:
        tenant = get_tenant_by_slug(session=session, slug=body.tenant.strip().lower())
        agent = None
        if tenant is not None:
            assert tenant.id is not None
            agent = authenticate_agent(
                session=session, tenant_id=tenant.id, email=body.email, password=body.password
            )
        if tenant is None or agent is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, detail="wrong workspace, email or password"
            )
        token = start_agent_session(
            session=session, agent=agent, hours=services.settings.console_session_hours
        )
        me = Me(
            name=agent.display_name,
            email=agent.email,
            tenant=tenant.slug,
            bot_mode=tenant.bot_mode,
            csrf_token=csrf_token(services, token),
        )
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=services.settings.console_session_hours * 3600,
        httponly=True,
        secure=services.settings.cookie_secure,
        samesite="strict",
        path="/",
    )
    return me


@router.post("/console/api/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(agent: CheckedAgent, services: ServicesDep) -> Response:
    with session_scope(services.db) as session:
        end_agent_session(session=session, token=agent.session_token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/console/api/me")
def me(agent: Agent, services: ServicesDep) -> Me:
    with read_scope(services.db) as session:
        tenant = session.get(Tenant, agent.tenant_id)
        assert tenant is not None
        mode = tenant.bot_mode
    return Me(
        name=agent.name,
        email=agent.email,
        tenant=agent.tenant_slug,
        bot_mode=mode,
        csrf_token=csrf_token(services, agent.session_token),
    )


# -- conversations ------------------------------------------------------------------------


def _summaries(session: Session, conversations: list[Conversation]) -> list[ConversationSummary]:
    ids = [c.id for c in conversations if c.id is not None]
    last = last_messages(session=session, conversation_ids=ids)
    customers = {
        c.id: c
        for c in session.exec(
            select(Customer).where(
                col(Customer.id).in_([c.customer_id for c in conversations if c.customer_id])
            )
        )
    }
    out = []
    for conversation in conversations:
        assert conversation.id is not None
        customer = customers.get(conversation.customer_id)
        message = last.get(conversation.id)
        out.append(
            ConversationSummary(
                id=conversation.id,
                status=conversation.status,
                assigned_agent=conversation.assigned_agent,
                escalation_reason=conversation.escalation_reason,
                customer=(customer.display_name or customer.email or f"Visitor {customer.id}")
                if customer
                else "Unknown",
                verified=bool(customer and customer.verified),
                csat=conversation.csat,
                updated_at=conversation.updated_at,
                preview=message.text[:140] if message else "",
                preview_role=message.role if message else None,
                needs_human=conversation.status == ConversationStatus.ESCALATED
                and conversation.assigned_agent is None,
            )
        )
    return out


@router.get("/console/api/conversations")
def conversations(
    agent: Agent, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ConversationSummary]:
    """Most recently active first."""
    with read_scope(services.db) as session:
        rows = list(recently_active(session=session, tenant_id=agent.tenant_id, limit=limit))
        return _summaries(session, rows)


@router.get("/console/api/conversations/{conversation_id}")
def conversation(conversation_id: int, agent: Agent, services: ServicesDep) -> ConversationDetail:
    with read_scope(services.db) as session:
        row = require_conversation(
            session=session, tenant_id=agent.tenant_id, conversation_id=conversation_id
        )
        messages = list_messages(session=session, conversation_id=conversation_id)
        pending = pending_suggestions(session=session, conversation_id=conversation_id)
        return ConversationDetail(
            conversation=_summaries(session, [row])[0],
            messages=[MessagePublic.model_validate(m) for m in messages],
            suggestions=[
                SuggestionPublic(
                    id=s.id,
                    reply_to_message_id=s.reply_to_message_id,
                    text=s.draft_text,
                    status=s.status,
                )
                for s in pending
            ],
        )


@router.post("/console/api/conversations/{conversation_id}/messages", status_code=201)
async def send(
    conversation_id: int, body: ConsoleMessage, agent: CheckedAgent, services: ServicesDep
) -> MessagePublic:
    message: Message = await agent_desk.send_agent_message(
        services,
        tenant_id=agent.tenant_id,
        conversation_id=conversation_id,
        text=body.text.strip(),
        author=agent.name,
        internal_note=body.internal_note,
        client_id=body.client_id,
    )
    return MessagePublic.model_validate(message)


@router.post("/console/api/conversations/{conversation_id}/{action}", status_code=204)
async def change_hands(
    conversation_id: int, action: str, agent: CheckedAgent, services: ServicesDep
) -> Response:
    """takeover (the bot stops replying), handback, resolve, or typing (the customer sees
    that an agent is composing)."""
    tenant_id = agent.tenant_id
    if action == "takeover":
        await agent_desk.take_over(
            services, tenant_id=tenant_id, conversation_id=conversation_id, agent=agent.name
        )
    elif action == "handback":
        await agent_desk.hand_back(services, tenant_id=tenant_id, conversation_id=conversation_id)
    elif action == "resolve":
        await agent_desk.resolve(services, tenant_id=tenant_id, conversation_id=conversation_id)
    elif action == "typing":
        await agent_desk.show_typing(
            services, tenant_id=tenant_id, conversation_id=conversation_id, agent=agent.name
        )
    else:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown action {action!r}")
    return Response(status_code=204)


@router.post("/console/api/suggestions/{suggestion_id}")
async def decide(
    suggestion_id: int, body: SuggestionDecision, agent: CheckedAgent, services: ServicesDep
) -> SuggestionPublic:
    """accept (send the draft), edit (send the edited text), reject (with a reason)."""
    suggestion = await agent_desk.decide(
        services,
        tenant_id=agent.tenant_id,
        suggestion_id=suggestion_id,
        decision=body.decision,
        reviewer=agent.name,
        text=body.text,
        reason=body.reason,
    )
    return SuggestionPublic(
        id=suggestion.id,
        reply_to_message_id=suggestion.reply_to_message_id,
        text=suggestion.final_text or suggestion.draft_text,
        status=suggestion.status,
    )


# -- review queue -------------------------------------------------------------------------


@router.get("/console/api/review")
def review(agent: Agent, services: ServicesDep) -> list[ReviewItemPublic]:
    """Bot replies customers rated down, or from conversations that ended with CSAT 1-2."""
    with read_scope(services.db) as session:
        return [
            ReviewItemPublic(
                message_id=item.message.id,
                conversation_id=item.message.conversation_id,
                question=item.question.text if item.question else "",
                reply=item.message.text,
                customer_rating=item.message.customer_rating,
                csat=item.conversation.csat,
            )
            for item in review_queue(session=session, tenant_id=agent.tenant_id)
        ]


@router.post("/console/api/review/{message_id}", status_code=204)
async def review_verdict(
    message_id: int, body: ReviewVerdict, agent: CheckedAgent, services: ServicesDep
) -> Response:
    """A corrected reply (trains as an edit) or a reason the reply was wrong."""
    await agent_desk.review(
        services,
        tenant_id=agent.tenant_id,
        message_id=message_id,
        reviewer=agent.name,
        corrected_text=body.corrected_text,
        reason=body.reason,
    )
    return Response(status_code=204)


# -- live updates -------------------------------------------------------------------------


@router.websocket("/console/ws")
async def console_socket(websocket: WebSocket) -> None:
    """Every event of the tenant's conversations, tagged with conversation_id."""
    await websocket.accept()
    if not same_origin(websocket):
        await close_for(websocket, ForbiddenError("origin not allowed"))
        return
    agent = await run_in_threadpool(load_agent, websocket)
    if agent is None:
        await close_for(websocket, ForbiddenError("sign in at /console/login"))
        return
    services = websocket.app.state.services
    subscription = Subscription()

    async def forward() -> None:
        while True:
            event = await subscription.queue.get()
            if subscription.overflowed.is_set():
                await websocket.close(CLOSE_TRY_AGAIN_LATER, "too slow; reload")
                return
            await websocket.send_json(event.payload())

    async def until_closed() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # the console sends nothing; its actions go through the JSON API

    async def while_signed_in() -> None:
        # The socket outlives the request that opened it: signing out (or the session
        # expiring, or the account being removed) must stop the stream too.
        while True:
            await asyncio.sleep(services.settings.console_session_check_s)
            if await run_in_threadpool(load_agent, websocket) is None:
                await close_for(websocket, ForbiddenError("signed out: sign in again"))
                return

    CONNECTIONS.labels("console").inc()
    with services.hub.subscribe_tenant(agent.tenant_id, subscription):
        await websocket.send_json(ReadyEvent().payload())
        tasks = {
            asyncio.create_task(forward()),
            asyncio.create_task(until_closed()),
            asyncio.create_task(while_signed_in()),
        }
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, WebSocketDisconnect):
                log.error(
                    "console socket failed (tenant=%s agent=%s)",
                    agent.tenant_id,
                    agent.name,
                    exc_info=outcome,
                )
    CONNECTIONS.labels("console").dec()
