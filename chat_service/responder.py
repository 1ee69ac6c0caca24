"""The bot's side of a conversation: compose a reply, stream it, store it.

Replies run as tasks owned by the service, not by a WebSocket connection: a customer whose
connection drops mid-reply still gets the whole reply when they resume, because it is stored.
One reply per conversation at a time; messages that arrive meanwhile are answered next.
In assist mode the same composition becomes a suggestion for the agents instead of a reply.

When the tenant has help-center documents, every reply is grounded (knowledge/): the articles
are retrieved before the model runs and go into its prompt, the reply is checked against them
and carries its sources; when they do not answer the question the bot says so and offers a
person, without running the model.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from chat_service.adapter_leases import AdapterLeases
from chat_service.frames import (
    DeltaEvent,
    ErrorEvent,
    MessageEvent,
    ReplyStartEvent,
    ServerEvent,
    SuggestionEvent,
)
from chat_service.grounded import PromptPlan, plan_prompt
from chat_service.handoff import Handoff
from chat_service.hot_swap import AdapterManager
from chat_service.hub import ConversationHub
from chat_service.reply_leases import LocalReplyLeases, ReplyLeases
from chat_service.reply_slots import RepliesBusyError, ReplySlots
from chat_service.telemetry import (
    CHAT_MESSAGES,
    GROUNDED,
    REPLIES,
    REPLY_STREAM_SECONDS,
    REPLY_TOKENS,
    TTFT,
)
from chat_service.token_budget import Budget, TokenBudget
from core.chat_format import Turn
from core.crud.conversations import (
    append_message,
    bot_replied_between,
    changed_widget_conversations,
    get_conversation,
    recent_messages,
    require_conversation,
)
from core.crud.suggestions import create_suggestion
from core.db import read_scope, session_scope
from core.models import (
    AdapterVersion,
    BotMode,
    ConversationStatus,
    Message,
    Role,
    Suggestion,
    Tenant,
    utcnow,
)
from core.settings import Settings
from engines import Engine, EngineError, SamplingParams
from knowledge import KnowledgeBase

log = logging.getLogger(__name__)
BOT_OFF_RECHECK_S = 5.0


def _log_failure(task: asyncio.Task[None]) -> None:
    """A reply task that died of something unexpected is logged, never lost silently."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("reply task %s failed", task.get_name(), exc_info=exc)


BUSY_TEXT = (
    "Many customers are writing just now, so the assistant cannot answer this one. "
    "Your message is saved and a person will follow up here."
)


class _AnsweredElsewhereError(Exception):
    """Rolls back a reply that lost the race to another worker's."""


@dataclass(frozen=True)
class ReplyPlan:
    composed: PromptPlan  # the prompt, its grounding, and an answer decided without the model
    reply_to: int  # seq of the customer message answered
    reply_to_id: int
    adapter_name: str | None
    adapter_version_id: int | None
    suggest: bool  # a draft for an agent rather than a reply to the customer

    @property
    def prompt(self) -> list[Turn]:
        return self.composed.prompt


class Responder:
    def __init__(
        self,
        *,
        db: DbEngine,
        engine: Engine,
        hub: ConversationHub,
        settings: Settings,
        adapters: AdapterManager,
        leases: AdapterLeases,
        handoff: Handoff,
        knowledge: KnowledgeBase | None = None,
        reply_leases: ReplyLeases | None = None,
        budget: Budget | None = None,
    ) -> None:
        self._db = db
        self._reply_leases = reply_leases or LocalReplyLeases()
        self._slots = ReplySlots(
            total=settings.max_concurrent_replies,
            per_tenant=settings.max_concurrent_replies_per_tenant,
            queue_per_tenant=settings.reply_queue_per_tenant,
        )
        self._budget = budget or TokenBudget(settings.tenant_daily_tokens)
        self._knowledge = knowledge
        self._engine = engine
        self._hub = hub
        self._settings = settings
        self._adapters = adapters
        self._leases = leases
        self._handoff = handoff
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        # Tenants whose bot is off, until when (monotonic): while it holds, a customer's message
        # costs no planning read at all. A mode change through this process's API clears it at
        # once; one made elsewhere (the CLI, another worker) is seen within BOT_OFF_RECHECK_S,
        # and the unanswered sweep then answers what came in meanwhile.
        self._bot_off_until: dict[int, float] = {}

    def schedule(self, *, tenant_id: int, conversation_id: int) -> None:
        task = self._tasks.get(conversation_id)
        if task is not None and not task.done():
            self._again.add(conversation_id)
            return
        task = asyncio.create_task(
            self._reply_loop(tenant_id, conversation_id), name=f"reply-{conversation_id}"
        )
        task.add_done_callback(_log_failure)
        self._tasks[conversation_id] = task

    # -- nothing acknowledged goes unanswered ------------------------------------------------

    async def answer_the_unanswered(self, *, quiet_for_s: float) -> int:
        """Schedules a reply wherever a customer's acknowledged message has none: after a
        restart (replies in flight were cancelled, or the process was killed) and after an
        engine failure. ``quiet_for_s``: only conversations unchanged for this long (a reply
        may be under way in another task). plan_reply decides whether the bot still owes one
        (bot mode, status, last message); repeated failures escalate as usual."""
        now = utcnow()
        changed = await run_in_threadpool(
            self._changed_between,
            now - timedelta(hours=self._settings.unanswered_max_age_h),
            now - timedelta(seconds=quiet_for_s),
        )
        scheduled = 0
        for tenant_id, conversation_id in changed:
            task = self._tasks.get(conversation_id)
            if task is None or task.done():
                self.schedule(tenant_id=tenant_id, conversation_id=conversation_id)
                scheduled += 1
        return scheduled

    def _changed_between(self, after: datetime, before: datetime) -> list[tuple[int, int]]:
        with read_scope(self._db) as session:
            return changed_widget_conversations(session=session, after=after, before=before)

    async def run_unanswered_loop(self) -> None:
        interval = self._settings.unanswered_sweep_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.answer_the_unanswered(quiet_for_s=interval)
            except Exception:
                log.exception("sweep for unanswered messages failed; next in %s s", interval)

    async def idle(self) -> None:
        """Wait until no reply is being composed (tests and graceful shutdown)."""
        while pending := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Lets replies under way finish for up to ``shutdown_drain_s`` (SIGTERM), then
        cancels the rest; those are answered after the restart (answer_the_unanswered)."""
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            log.info(
                "draining %d replies (up to %s s)", len(pending), self._settings.shutdown_drain_s
            )
            await asyncio.wait(pending, timeout=self._settings.shutdown_drain_s)
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    async def _reply_loop(self, tenant_id: int, conversation_id: int) -> None:
        try:
            while True:
                self._again.discard(conversation_id)
                await self._reply_once(tenant_id, conversation_id)
                if conversation_id not in self._again:
                    return
        finally:
            if self._tasks.get(conversation_id) is asyncio.current_task():
                del self._tasks[conversation_id]

    def mode_changed(self, tenant_id: int) -> None:
        self._bot_off_until.pop(tenant_id, None)

    async def _reply_once(self, tenant_id: int, conversation_id: int) -> None:
        if self._bot_off_until.get(tenant_id, 0.0) > time.monotonic():
            return
        # Across workers: one of them answers; the others plan again once it is done.
        async with self._reply_leases.hold(conversation_id):
            await self._answer(tenant_id, conversation_id)

    async def _answer(self, tenant_id: int, conversation_id: int) -> None:
        scheduled = time.perf_counter()
        plan = await run_in_threadpool(
            self.plan_reply, tenant_id, conversation_id, set(self._adapters.loaded)
        )
        if plan is None:
            return
        reply_id = uuid.uuid4().hex
        context = f"tenant={tenant_id} conversation={conversation_id} reply={reply_id}"
        # A draft for an agent (assist mode) is composed out of the customer's sight.
        visible = not plan.suggest
        kind = "suggestion" if plan.suggest else "reply"

        def publish(event: ServerEvent) -> None:
            self._hub.publish(tenant_id, conversation_id, event, customer_visible=visible)

        async def fail(outcome: str, code: str, detail: str) -> None:
            """No reply after all: say so, and count a failed answer towards a handoff."""
            REPLIES.labels(kind, outcome).inc()
            publish(ErrorEvent(code=code, detail=detail, reply_id=reply_id))
            if visible:
                await self._handoff.failed_answer(tenant_id, conversation_id)

        async def busy(reason: str) -> None:
            """No model time for this reply: a person takes over rather than a silent wait."""
            log.warning("reply not attempted (%s): %s", context, reason)
            REPLIES.labels(kind, "busy").inc()
            publish(ErrorEvent(code="busy", detail=BUSY_TEXT, reply_id=reply_id))
            if visible:
                await self._handoff.escalate(tenant_id, conversation_id, f"bot busy: {reason}")

        start = ReplyStartEvent(reply_id=reply_id, reply_to=plan.reply_to, suggestion=plan.suggest)
        decided = plan.composed.answer
        if decided is not None:
            publish(start)
            publish(DeltaEvent(reply_id=reply_id, text=decided.text))
            await self._deliver(
                tenant_id, conversation_id, plan, decided.text, context, reply_id, publish
            )
            return
        if await self._budget.exhausted(tenant_id):
            await busy(f"daily budget of {self._budget.daily_tokens} tokens spent")
            return
        try:
            async with self._slots.slot(tenant_id):
                publish(start)  # once the model has a slot for it
                text = await self._generate(tenant_id, plan, scheduled, context, reply_id, publish)
        except RepliesBusyError as exc:
            await busy(str(exc))
            return
        except EngineError:
            log.exception("reply failed (%s adapter=%s)", context, plan.adapter_name)
            await fail(
                "failed",
                "reply_failed",
                "The assistant could not answer just now. Your message is saved; "
                "please try again or ask for a human.",
            )
            return
        if not text:
            log.warning("empty reply discarded (%s)", context)
            await fail("empty", "reply_empty", "The assistant had no answer.")
            return
        REPLIES.labels(kind, "ok").inc()
        await self._deliver(tenant_id, conversation_id, plan, text, context, reply_id, publish)

    async def _generate(
        self,
        tenant_id: int,
        plan: ReplyPlan,
        scheduled: float,
        context: str,
        reply_id: str,
        publish: Callable[[ServerEvent], None],
    ) -> str:
        """Streams the model's reply to the subscribers; returns it whole (stripped)."""
        params = SamplingParams(
            max_tokens=self._settings.max_new_tokens, temperature=self._settings.temperature
        )
        pieces: list[str] = []
        first_at = 0.0
        # The lease keeps this adapter loaded until the reply ends, even if a new version
        # is activated meanwhile: a reply finishes on the adapter it began with.
        with self._leases.hold(plan.adapter_name):
            try:
                async for piece in self._engine.stream_chat(
                    plan.prompt, adapter=plan.adapter_name, params=params
                ):
                    if not pieces:
                        first_at = time.perf_counter()
                        TTFT.observe(first_at - scheduled)
                    pieces.append(piece)
                    REPLY_TOKENS.inc()
                    publish(DeltaEvent(reply_id=reply_id, text=piece))
            finally:
                await self._budget.spend(tenant_id, len(pieces))
        if pieces:
            REPLY_STREAM_SECONDS.inc(time.perf_counter() - first_at)
        return "".join(pieces).strip()

    async def _deliver(
        self,
        tenant_id: int,
        conversation_id: int,
        plan: ReplyPlan,
        text: str,
        context: str,
        reply_id: str,
        publish: Callable[[ServerEvent], None],
    ) -> None:
        """Store the reply (or the draft) with its grounding, and show it."""
        record = None
        grounding = plan.composed.grounding
        answer = plan.composed.finish(text, min_overlap=self._settings.knowledge.min_overlap)
        if answer is not None and grounding is not None:
            text, record = answer.text, answer.grounding_record(grounding)
            GROUNDED.labels(
                "refused" if answer.refused else "quoted" if answer.quoted else "answered"
            ).inc()
            if answer.reason:
                log.info("grounding (%s): %s", context, answer.reason)
        if plan.suggest:
            suggestion = await run_in_threadpool(
                self._store_suggestion, tenant_id, conversation_id, plan, text, record
            )
            publish(SuggestionEvent.of(suggestion, reply_id=reply_id))
            log.info("suggested (%s suggestion=%s)", context, suggestion.id)
            return
        message = await run_in_threadpool(
            self._store_reply, tenant_id, conversation_id, plan, text, record
        )
        if message is None:
            log.warning("reply discarded: another worker answered first (%s)", context)
            return
        CHAT_MESSAGES.labels(Role.BOT).inc()
        publish(MessageEvent.of(message, reply_id=reply_id))
        log.info("replied (%s seq=%s chars=%d)", context, message.seq, len(text))

    def plan_reply(
        self, tenant_id: int, conversation_id: int, loaded_adapters: set[str]
    ) -> ReplyPlan | None:
        """Decide whether the bot answers now, and with which adapter and context."""
        with read_scope(self._db) as session:
            tenant = session.get(Tenant, tenant_id)
            conversation = get_conversation(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id
            )
            if tenant is None or conversation is None:
                return None
            if tenant.bot_mode == BotMode.OFF:
                self._bot_off_until[tenant_id] = time.monotonic() + BOT_OFF_RECHECK_S
                return None
            # auto: the bot answers open conversations (escalated = a human has it);
            # assist: the bot drafts for the agent until the conversation is resolved.
            if tenant.bot_mode == BotMode.AUTO:
                suggest = False
                if conversation.status != ConversationStatus.OPEN:
                    return None
            elif tenant.bot_mode == BotMode.ASSIST:
                suggest = True
                if conversation.status == ConversationStatus.RESOLVED:
                    return None
            else:
                return None
            # Every stored message costs at least one token, so no more than the budget's
            # worth can fit; the engine fits the turns to the exact token budget.
            history = recent_messages(
                session=session,
                conversation_id=conversation_id,
                limit=self._settings.context_tokens - self._settings.max_new_tokens,
            )
            if not history or history[-1].role != Role.CUSTOMER:
                return None  # already answered
            if (
                suggest
                and session.exec(
                    select(Suggestion.id).where(Suggestion.reply_to_message_id == history[-1].id)
                ).first()
            ):
                return None  # already drafted
            adapter_name, adapter_id = None, None
            # Another worker may have just switched the pointer: until this worker's next
            # sync sees the new version loaded, the version it replaced still answers.
            for candidate in (tenant.active_adapter_id, tenant.previous_adapter_id):
                adapter = session.get(AdapterVersion, candidate) if candidate else None
                if adapter is not None and adapter.name in loaded_adapters:
                    adapter_name, adapter_id = adapter.name, adapter.id
                    break
            if tenant.active_adapter_id is not None and adapter_id != tenant.active_adapter_id:
                log.warning(
                    "tenant=%s active adapter %s is not loaded here yet; answering with %s",
                    tenant.slug,
                    tenant.active_adapter_id,
                    adapter_name or "the base model",
                )
        # Grounding goes through the knowledge base's cached index, after this snapshot ended.
        return ReplyPlan(
            composed=plan_prompt(self._knowledge, self._settings.system_prompt, tenant_id, history),
            reply_to=history[-1].seq,
            reply_to_id=history[-1].id,  # type: ignore[arg-type]
            adapter_name=adapter_name,
            adapter_version_id=adapter_id,
            suggest=suggest,
        )

    def _store_reply(
        self,
        tenant_id: int,
        conversation_id: int,
        plan: ReplyPlan,
        text: str,
        grounding: dict[str, Any] | None,
    ) -> Message | None:
        """The reply, or None when another worker stored one for this message meanwhile."""
        try:
            with session_scope(self._db) as session:
                conversation = require_conversation(
                    session=session, tenant_id=tenant_id, conversation_id=conversation_id
                )
                message, _ = append_message(
                    session=session,
                    conversation=conversation,
                    role=Role.BOT,
                    text=text,
                    adapter_version_id=plan.adapter_version_id,
                    grounding=grounding,
                )
                if bot_replied_between(
                    session=session,
                    conversation_id=conversation_id,
                    after_seq=plan.reply_to,
                    before_seq=message.seq,
                ):
                    raise _AnsweredElsewhereError
                return message
        except _AnsweredElsewhereError:
            return None

    def _store_suggestion(
        self,
        tenant_id: int,
        conversation_id: int,
        plan: ReplyPlan,
        text: str,
        grounding: dict[str, Any] | None,
    ) -> Suggestion:
        with session_scope(self._db) as session:
            conversation = require_conversation(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id
            )
            reply_to = session.get(Message, plan.reply_to_id)
            assert reply_to is not None
            return create_suggestion(
                session=session,
                conversation=conversation,
                reply_to=reply_to,
                draft_text=text,
                adapter_version_id=plan.adapter_version_id,
                grounding=grounding,
            )
