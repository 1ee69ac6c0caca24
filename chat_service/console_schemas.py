"""Request and response bodies of the agent console's API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from chat_service.schemas import MessagePublic
from core.crud.suggestions import Decision
from core.models import BotMode, ConversationStatus


class Login(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    name: str
    email: str
    tenant: str
    bot_mode: BotMode
    csrf_token: str


class ConversationSummary(BaseModel):
    id: int
    status: ConversationStatus
    assigned_agent: str | None
    escalation_reason: str | None
    customer: str
    verified: bool
    csat: int | None
    updated_at: datetime
    preview: str
    preview_role: str | None
    needs_human: bool = Field(description="Escalated and nobody has taken it yet.")


class SuggestionPublic(BaseModel):
    id: int
    reply_to_message_id: int
    text: str
    status: str


class ConversationDetail(BaseModel):
    conversation: ConversationSummary
    messages: list[MessagePublic]
    suggestions: list[SuggestionPublic]


class ConsoleMessage(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    internal_note: bool = False
    client_id: str | None = Field(None, max_length=100)


class SuggestionDecision(BaseModel):
    decision: Decision
    text: str | None = Field(None, max_length=4000, description="The edited reply (edit).")
    reason: str | None = Field(None, max_length=1000, description="Why (reject).")


class ReviewItemPublic(BaseModel):
    message_id: int
    conversation_id: int
    question: str
    reply: str
    customer_rating: int | None
    csat: int | None


class ReviewVerdict(BaseModel):
    corrected_text: str | None = Field(None, max_length=4000)
    reason: str | None = Field(None, max_length=1000)
