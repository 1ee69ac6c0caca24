"""One widget connection: read customer frames, persist them, and deliver everything the
conversation produces in sequence order.

Delivery rule: the connection remembers the last sequence number it sent. A message or ack
with a higher number than the next one expected first triggers a catch-up read from the
database, so events published out of order (or missed while disconnected) are never skipped,
and anything already sent is never sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import ExitStack

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from chat_service.errors import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    close_for,
)
from chat_service.frames import (
    AckEvent,
    ContactFrame,
    CsatFrame,
    ErrorEvent,
    Feedback,
    FeedbackEvent,
    FrameError,
    HandoffFrame,
    HelloFrame,
    IdentityEvent,
    MessageEvent,
    MessageFrame,
    PingFrame,
    PongEvent,
    RateFrame,
    SavedEvent,
    ServerEvent,
    SessionEvent,
    StatusEvent,
    parse_client_frame,
)
from chat_service.hub import Subscription
from chat_service.identity import (
    IdentityError,
    Visitor,
    issue_visitor_token,
    verify_customer_jwt,
    verify_visitor_token,
)
from chat_service.rate_limit import client_address
from chat_service.services import Services
from chat_service.telemetry import CHAT_MESSAGES, CONNECTIONS
from core.crud.conversations import (
    append_customer_message,
    create_anonymous_customer,
    list_messages,
    require_conversation,
    start_conversation,
)
from core.crud.customers import customer_for_identity
from core.crud.handoff import FeedbackError, leave_contact, rate_bot_message, set_csat
from core.db import read_scope
from core.models import Conversation, Message, Role, Tenant

log = logging.getLogger(__name__)
# A client that keeps sending after being told to wait is not a widget: it is cut off.
FRAMES_REFUSED_BEFORE_CLOSE = 20


class ChatSession:
    def __init__(self, websocket: WebSocket, services: Services, tenant: Tenant) -> None:
        assert tenant.id is not None
        self._ws = websocket
        self._services = services
        self._tenant_id = tenant.id
        self._tenant_slug = tenant.slug
        self._outbox = Subscription()
        self._subscriptions = ExitStack()
        self._conversation_id: int | None = None
        self._last_sent_seq = 0
        self._visitor: Visitor | None = None
        self._language: str | None = None
        self._connection_key = uuid.uuid4().hex  # this connection's rate-limit bucket

    async def run(self, conversation: Conversation | None, last_seq: int) -> None:
        CONNECTIONS.labels("widget").inc()
        try:
            await self._run(conversation, last_seq)
        finally:
            CONNECTIONS.labels("widget").dec()

    async def _run(self, conversation: Conversation | None, last_seq: int) -> None:
        with self._subscriptions:
            if conversation is not None:
                assert conversation.id is not None
                self._attach(conversation.id)
                self._last_sent_seq = max(0, last_seq)
                await self._send(
                    SessionEvent(
                        conversation_id=conversation.id,
                        last_seq=conversation.last_seq,
                        status=conversation.status,
                    )
                )
                await self._send(StatusEvent.of(conversation))
                await self._catch_up(upto=None)
            reader = asyncio.create_task(self._read_loop())
            sender = asyncio.create_task(self._send_loop())
            done, pending = await asyncio.wait(
                {reader, sender}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if (exc := task.exception()) is not None and not isinstance(
                    exc, WebSocketDisconnect
                ):
                    log.error("chat connection failed (%s)", self._context(), exc_info=exc)

    def _context(self) -> str:
        return f"tenant={self._tenant_slug} conversation={self._conversation_id}"

    def _attach(self, conversation_id: int) -> None:
        self._conversation_id = conversation_id
        self._subscriptions.enter_context(
            self._services.hub.subscribe(self._tenant_id, conversation_id, self._outbox)
        )

    # -- inbound -----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        settings = self._services.settings
        limit = settings.ws_max_message_bytes
        refused_in_a_row = 0
        while True:
            event = await self._ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            # Every frame counts, whatever its type: pings, hellos and feedback cost work too.
            wait = await self._services.rate_limiter.take(
                [("frames", self._connection_key, settings.widget_frames_per_minute)]
            )
            if wait > 0:
                refused_in_a_row += 1
                if refused_in_a_row > FRAMES_REFUSED_BEFORE_CLOSE:
                    log.warning("frame flood, closing (%s)", self._context())
                    await self._ws.close(CLOSE_POLICY_VIOLATION, "too many frames")
                    return
                self._outbox.offer(
                    ErrorEvent(
                        code="rate_limited",
                        detail=f"too many frames; try again in {wait:.0f} s",
                        retry_after=round(wait, 1),
                    )
                )
                continue
            refused_in_a_row = 0
            raw: str | None = event.get("text")
            if raw is None:
                self._outbox.offer(
                    ErrorEvent(
                        code="bad_frame", detail="binary frames are not supported; send JSON text"
                    )
                )
                continue
            if len(raw.encode()) > limit:
                await self._ws.close(CLOSE_TOO_BIG, f"frame larger than {limit} bytes")
                return
            try:
                frame = parse_client_frame(raw)
            except FrameError as exc:
                self._outbox.offer(ErrorEvent(code=exc.code, detail=exc.detail))
                continue
            if isinstance(frame, HelloFrame):
                if not await self._identify(frame):
                    return
            elif isinstance(frame, MessageFrame):
                await self._accept_customer_message(frame)
            elif isinstance(frame, PingFrame):
                self._outbox.offer(PongEvent())
            else:
                await self._accept_feedback(frame)

    async def _identify(self, frame: HelloFrame) -> bool:
        """Decide who the visitor is; False when the connection was refused."""
        settings = self._services.settings
        key = self._services.secret_key
        issued: str | None = None
        self._language = (frame.language or "").strip()[:16] or None
        try:
            if frame.customer_token:
                secrets = settings.widget_jwt_secrets.get(self._tenant_slug, [])
                self._visitor = verify_customer_jwt(frame.customer_token, secrets)
            elif frame.visitor_token:
                self._visitor = verify_visitor_token(key, frame.visitor_token, self._tenant_id)
        except IdentityError as exc:
            if frame.customer_token:  # the tenant's page sent a bad token: say so, refuse
                log.warning("refused customer token (%s): %s", self._context(), exc)
                await close_for(self._ws, exc)
                return False
            self._visitor = None  # an expired or foreign visitor token: start afresh
        if self._visitor is None:
            issued, self._visitor = issue_visitor_token(
                key, self._tenant_id, settings.visitor_token_days
            )
        self._outbox.offer(IdentityEvent(visitor_token=issued, verified=self._visitor.verified))
        return True

    async def _accept_customer_message(self, frame: MessageFrame) -> None:
        max_chars = self._services.settings.max_message_chars
        text = frame.text.strip()
        if not text or len(text) > max_chars:
            self._outbox.offer(
                ErrorEvent(
                    code="bad_message",
                    detail=f"text must be 1 to {max_chars} characters",
                    client_id=frame.client_id,
                )
            )
            return
        settings = self._services.settings
        client = client_address(self._ws)
        wait = await self._services.rate_limiter.take(
            [
                ("connection", self._connection_key, settings.widget_messages_per_minute),
                ("ip", client, settings.widget_messages_per_minute_per_ip),
                ("tenant", str(self._tenant_id), settings.widget_messages_per_minute_per_tenant),
            ]
        )
        if wait > 0:
            log.warning("rate limited (%s ip=%s)", self._context(), client)
            self._outbox.offer(
                ErrorEvent(
                    code="rate_limited",
                    detail=f"too many messages; try again in {wait:.0f} s",
                    client_id=frame.client_id,
                    retry_after=round(wait, 1),
                )
            )
            return
        conversation_id = await self._ensure_conversation()
        message, created = await self._services.writes.arun(
            lambda session: self._store(session, frame.client_id, text)
        )
        assert message.id is not None
        self._outbox.offer(
            AckEvent(
                client_id=frame.client_id,
                seq=message.seq,
                message_id=message.id,
                duplicate=not created,
            )
        )
        if not created:
            return
        CHAT_MESSAGES.labels(Role.CUSTOMER).inc()
        self._services.hub.publish(
            self._tenant_id, conversation_id, MessageEvent.of(message, client_id=frame.client_id)
        )
        handoff = self._services.handoff
        if handoff.asks_for_human(text):
            await handoff.escalate(self._tenant_id, conversation_id, "customer asked for a human")
        self._services.responder.schedule(
            tenant_id=self._tenant_id, conversation_id=conversation_id
        )

    async def _ensure_conversation(self) -> int:
        """Conversations start with the first thing a customer does, not on page views."""
        if self._conversation_id is not None:
            return self._conversation_id
        conversation, token = await self._services.writes.arun(self._start_conversation)
        assert conversation.id is not None
        self._attach(conversation.id)
        self._outbox.offer(
            SessionEvent(
                conversation_id=conversation.id,
                token=token,
                last_seq=0,
                status=conversation.status,
            )
        )
        log.info("conversation started (%s)", self._context())
        return conversation.id

    async def _accept_feedback(
        self, frame: HandoffFrame | RateFrame | CsatFrame | ContactFrame
    ) -> None:
        handoff = self._services.handoff
        if isinstance(frame, HandoffFrame):
            conversation_id = await self._ensure_conversation()
            await handoff.escalate(self._tenant_id, conversation_id, "customer asked for a human")
            return
        if self._conversation_id is None:
            self._outbox.offer(ErrorEvent(code="no_conversation", detail="send a message first"))
            return
        conversation_id = self._conversation_id

        def store(session: Session, conversation: Conversation) -> Feedback:
            if isinstance(frame, RateFrame):
                rate_bot_message(
                    session=session,
                    conversation=conversation,
                    message_id=frame.message_id,
                    rating=frame.rating,
                )
                return "rating"
            if isinstance(frame, CsatFrame):
                set_csat(session=session, conversation=conversation, score=frame.score)
                return "csat"
            leave_contact(session=session, conversation=conversation, email=frame.email)
            return "contact"

        def run(session: Session) -> Feedback:
            conversation = require_conversation(
                session=session, tenant_id=self._tenant_id, conversation_id=conversation_id
            )
            return store(session, conversation)

        try:
            what = await self._services.writes.arun(run)
        except FeedbackError as exc:
            self._outbox.offer(ErrorEvent(code="bad_feedback", detail=str(exc)))
            return
        self._outbox.offer(SavedEvent(what=what))
        self._services.hub.publish(
            self._tenant_id, conversation_id, FeedbackEvent(what=what), customer_visible=False
        )
        if isinstance(frame, RateFrame) and frame.rating == -1:
            await handoff.failed_answer(self._tenant_id, conversation_id)

    def _start_conversation(self, session: Session) -> tuple[Conversation, str]:
        visitor = self._visitor
        if visitor is None:  # an API client that never said hello
            customer = create_anonymous_customer(session=session, tenant_id=self._tenant_id)
        else:
            customer = customer_for_identity(
                session=session,
                tenant_id=self._tenant_id,
                source=visitor.source,
                external_id=visitor.external_id,
                verified=visitor.verified,
                display_name=visitor.display_name,
                email=visitor.email,
                tier=visitor.tier,
            )
        conversation, token = start_conversation(
            session=session, tenant_id=self._tenant_id, customer_id=customer.id
        )
        conversation.language = self._language
        session.add(conversation)
        session.flush()
        return conversation, token

    def _store(self, session: Session, client_id: str, text: str) -> tuple[Message, bool]:
        """Runs in a shared group commit: the ack goes out once the batch is durable."""
        assert self._conversation_id is not None
        return append_customer_message(
            session=session,
            tenant_id=self._tenant_id,
            conversation_id=self._conversation_id,
            text=text,
            client_id=client_id,
        )

    # -- outbound ----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            frame = await self._outbox.queue.get()
            # An overflowing queue is full, so this get never waits long to notice it.
            if self._outbox.overflowed.is_set():
                await self._ws.close(CLOSE_TRY_AGAIN_LATER, "client too slow; resume")
                return
            await self._deliver(frame)

    async def _deliver(self, frame: ServerEvent) -> None:
        seq = frame.seq if isinstance(frame, MessageEvent | AckEvent) else None
        if seq is None:
            await self._send(frame)
            return
        if seq <= self._last_sent_seq:
            if isinstance(frame, AckEvent):
                await self._send(frame)  # a retried message is acked again, never re-sent
            return  # a message already delivered by a catch-up read or an earlier frame
        if seq > self._last_sent_seq + 1:
            await self._catch_up(upto=seq - 1)
        await self._send(frame)
        self._last_sent_seq = max(self._last_sent_seq, seq)

    async def _catch_up(self, upto: int | None) -> None:
        """Send stored customer-visible messages after the last one sent, up to ``upto``."""
        assert self._conversation_id is not None
        missed = await run_in_threadpool(self._read_after, self._last_sent_seq)
        for message in missed:
            if upto is not None and message.seq > upto:
                break
            await self._send(MessageEvent.of(message, client_id=message.client_id))
            self._last_sent_seq = message.seq

    def _read_after(self, after_seq: int) -> list[Message]:
        assert self._conversation_id is not None
        with read_scope(self._services.db) as session:
            return list(
                list_messages(
                    session=session,
                    conversation_id=self._conversation_id,
                    after_seq=after_seq,
                    include_internal=False,
                )
            )

    async def _send(self, frame: ServerEvent) -> None:
        if self._ws.application_state != WebSocketState.CONNECTED:
            raise WebSocketDisconnect(1006)
        await self._ws.send_json(frame.payload())
