"""Handoff rules: when the bot steps aside for a human, and what the customer is told.

A conversation escalates when the customer asks for a human (the widget's button or words in
SUPPORTLOOP_HANDOFF_KEYWORDS) or after SUPPORTLOOP_HANDOFF_AFTER_FAILED_ANSWERS failed or
rated-down bot answers. An escalated conversation gets no bot replies. If no agent takes it
within SUPPORTLOOP_HANDOFF_TIMEOUT_S the customer is told and offered to leave an email.

Notices are stored as system messages whose author is a notice key ("notice:escalated"), so the
widget can show its own (translated) string for the key and falls back to the stored text.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from chat_service.frames import MessageEvent, StatusEvent
from chat_service.hub import ConversationHub
from core.crud import handoff
from core.crud.conversations import require_conversation
from core.crud.handoff import Notice, NoticeKey
from core.db import session_scope
from core.models import Conversation, Message, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)

ESCALATED = Notice(NoticeKey.ESCALATED, "A human agent will join this chat shortly.")
HANDED_BACK = Notice(NoticeKey.HANDED_BACK, "You are chatting with our assistant again.")
RESOLVED = Notice(NoticeKey.RESOLVED, "This conversation is resolved. Thanks for contacting us!")
NO_AGENT = Notice(
    NoticeKey.NO_AGENT,
    "Sorry, nobody is available right now. Leave your email and we will get back to you.",
)


def agent_joined(agent: str) -> Notice:
    return Notice(NoticeKey.AGENT_JOINED, f"{agent} joined the chat.", arg=agent)


def keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    words = [re.escape(k.strip()) for k in keywords if k.strip()]
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE) if words else None


class Handoff:
    def __init__(self, *, db: DbEngine, hub: ConversationHub, settings: Settings) -> None:
        self._db = db
        self._hub = hub
        self._settings = settings
        self._keywords = keyword_pattern(settings.handoff_keywords)

    def asks_for_human(self, text: str) -> bool:
        return bool(self._keywords and self._keywords.search(text))

    async def change(
        self,
        tenant_id: int,
        conversation_id: int,
        act: Callable[[Session, Conversation], Message | None],
    ) -> bool:
        """Run one state change in its own transaction, then tell the widget and the consoles.
        Returns False when nothing changed."""

        def run() -> tuple[Message | None, Conversation]:
            with session_scope(self._db) as session:
                conversation = require_conversation(
                    session=session, tenant_id=tenant_id, conversation_id=conversation_id
                )
                notice = act(session, conversation)
                session.flush()
                return notice, conversation

        notice, conversation = await run_in_threadpool(run)
        if notice is None:
            return False
        self._hub.publish(tenant_id, conversation_id, MessageEvent.of(notice))
        self._hub.publish(tenant_id, conversation_id, StatusEvent.of(conversation))
        log.info(
            "conversation %s (tenant=%s conversation=%s)",
            conversation.status,
            tenant_id,
            conversation_id,
        )
        return True

    async def escalate(self, tenant_id: int, conversation_id: int, reason: str) -> bool:
        return await self.change(
            tenant_id,
            conversation_id,
            lambda s, c: handoff.escalate(
                session=s, conversation=c, reason=reason, notice=ESCALATED
            ),
        )

    async def failed_answer(self, tenant_id: int, conversation_id: int) -> None:
        """Count a failed or rated-down answer; enough since a human last took or handed back
        the conversation escalate."""
        limit = self._settings.handoff_after_failed_answers

        def act(session: Session, conversation: Conversation) -> Message | None:
            if handoff.record_failed_answer(session=session, conversation=conversation) < limit:
                return None
            return handoff.escalate(
                session=session,
                conversation=conversation,
                reason=f"{limit} failed answers",
                notice=ESCALATED,
            )

        await self.change(tenant_id, conversation_id, act)

    async def expire_due(self) -> int:
        """Tell customers whose escalation nobody claimed in time; returns how many."""
        cutoff = utcnow() - timedelta(seconds=self._settings.handoff_timeout_s)

        def due() -> list[tuple[int, int]]:
            with session_scope(self._db) as session:
                rows = handoff.expired_handoffs(session=session, escalated_before=cutoff)
                return [(c.tenant_id, c.id) for c in rows if c.id is not None]

        count = 0
        for tenant_id, conversation_id in await run_in_threadpool(due):
            count += await self.change(
                tenant_id,
                conversation_id,
                lambda s, c: handoff.mark_handoff_expired(
                    session=s, conversation=c, notice=NO_AGENT
                ),
            )
        return count

    async def run_expiry_loop(self) -> None:
        while True:
            try:
                await self.expire_due()
            except Exception:
                log.exception("handoff expiry check failed")
            await asyncio.sleep(self._settings.handoff_check_interval_s)
