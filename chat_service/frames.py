"""The WebSocket protocol of the widget (/v1/chat/ws) and the console (/console/ws): JSON text
frames, one pydantic model each, both ways.

The reference below is generated from the models by `protocol_reference()`, and a test holds
this docstring to it: change a model, then paste the new reference here. A field marked `?`
may be absent; the others are always there (some may be null). Consoles watch every
conversation of their tenant, so every event they receive also carries `conversation_id`.

Client -> server:
  hello: visitor_token?, customer_token?, language?  (who the visitor is; before the first message)
  message: client_id, text  (a customer message; client_id is unique per message)
  handoff  (the customer pressed 'talk to a human')
  rate: message_id, rating  (thumbs up (1) or down (-1) on a bot reply)
  csat: score  (1-5, once the conversation is resolved)
  contact: email  (when nobody could take the handoff)
  ping

Server -> client:
  identity: visitor_token, verified  (the answer to hello; a new visitor gets a token)
  session: conversation_id, token?, last_seq, status  (on resume, or when a conversation starts)
  status: status, assigned_agent, offer_email, csat  (who has the conversation)
  typing: role, author  (an agent is composing)
  saved: what  (feedback stored: rating, csat or contact)
  feedback: what  (consoles: a customer left feedback)
  ack: client_id, seq, message_id, duplicate  (the customer message is stored)
  reply_start: reply_id, reply_to, suggestion  (the bot started composing; a suggestion is for agents)
  delta: reply_id, text  (a piece of the bot's reply as it streams)
  message: id, seq, role, text, author, internal_note, created_at, sources, offer_handoff, client_id?, reply_id?  (a stored message; a grounded bot reply lists its sources, a declined one offers a person)
  suggestion: id, reply_to_message_id, text, status, final_text, reviewer, reason, sources, reply_id?  (consoles: a draft and its review)
  error: code, detail, client_id?, reply_id?, retry_after?  (the connection stays usable)
  pong
  ready  (consoles: subscribed, events follow)

Close codes (chat_service/errors.py): 1008 unknown tenant, disallowed origin or bad token;
1009 frame over the size limit; 1013 the client fell too far behind (reconnect and resume).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from core.models import Conversation, Message, Suggestion

# -- client -> server ---------------------------------------------------------------------


class HelloFrame(BaseModel):
    """who the visitor is; before the first message"""

    type: Literal["hello"]
    visitor_token: str | None = Field(None, max_length=2000)
    customer_token: str | None = Field(None, max_length=8000)
    language: str | None = Field(None, max_length=35, description="navigator.language")


class MessageFrame(BaseModel):
    """a customer message; client_id is unique per message"""

    type: Literal["message"]
    client_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1)


class HandoffFrame(BaseModel):
    """the customer pressed 'talk to a human'"""

    type: Literal["handoff"]


class RateFrame(BaseModel):
    """thumbs up (1) or down (-1) on a bot reply"""

    type: Literal["rate"]
    message_id: int
    rating: Literal[1, -1]


class CsatFrame(BaseModel):
    """1-5, once the conversation is resolved"""

    type: Literal["csat"]
    score: int = Field(ge=1, le=5)


class ContactFrame(BaseModel):
    """when nobody could take the handoff"""

    type: Literal["contact"]
    email: str = Field(min_length=3, max_length=320)


class PingFrame(BaseModel):
    type: Literal["ping"]


CLIENT_FRAMES = (
    HelloFrame,
    MessageFrame,
    HandoffFrame,
    RateFrame,
    CsatFrame,
    ContactFrame,
    PingFrame,
)
AnyClientFrame = (
    MessageFrame | PingFrame | HelloFrame | HandoffFrame | RateFrame | CsatFrame | ContactFrame
)
ClientFrame = Annotated[AnyClientFrame, Field(discriminator="type")]
_client_frame = TypeAdapter(ClientFrame)


class FrameError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def parse_client_frame(raw: str) -> AnyClientFrame:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FrameError(
            "bad_json", f"frame is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from None
    if not isinstance(data, dict) or "type" not in data:
        raise FrameError("bad_frame", 'frame must be a JSON object with a "type" field')
    try:
        return _client_frame.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FrameError("bad_frame", f"{where}: {first['msg']}") from None


# -- server -> client ---------------------------------------------------------------------


class ServerEvent(BaseModel):
    """Every frame the server sends. Optional fields are left out of the JSON unless set;
    ``conversation_id`` is set for consoles (see ``for_console``)."""

    model_config = ConfigDict(frozen=True)
    type: ClassVar[str]
    conversation_id: int | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON object sent: the type, every required field, the optional ones set."""
        return {"type": self.type, **self.model_dump(mode="json", exclude_unset=True)}

    def for_console(self, conversation_id: int) -> ServerEvent:
        return self.model_copy(update={"conversation_id": conversation_id})


class IdentityEvent(ServerEvent):
    """the answer to hello; a new visitor gets a token"""

    type: ClassVar[str] = "identity"
    visitor_token: str | None
    verified: bool


class SessionEvent(ServerEvent):
    """on resume, or when a conversation starts"""

    type: ClassVar[str] = "session"
    conversation_id: int
    token: str | None = None
    last_seq: int
    status: str


class StatusEvent(ServerEvent):
    """who has the conversation"""

    type: ClassVar[str] = "status"
    status: str
    assigned_agent: str | None
    offer_email: bool
    csat: int | None

    @classmethod
    def of(cls, conversation: Conversation) -> StatusEvent:
        return cls(
            status=conversation.status,
            assigned_agent=conversation.assigned_agent,
            offer_email=conversation.handoff_expired_at is not None
            and conversation.assigned_agent is None,
            csat=conversation.csat,
        )


class TypingEvent(ServerEvent):
    """an agent is composing"""

    type: ClassVar[str] = "typing"
    role: Literal["agent"]
    author: str


Feedback = Literal["rating", "csat", "contact"]


class SavedEvent(ServerEvent):
    """feedback stored: rating, csat or contact"""

    type: ClassVar[str] = "saved"
    what: Feedback


class FeedbackEvent(ServerEvent):
    """consoles: a customer left feedback"""

    type: ClassVar[str] = "feedback"
    what: Feedback


class AckEvent(ServerEvent):
    """the customer message is stored"""

    type: ClassVar[str] = "ack"
    client_id: str
    seq: int
    message_id: int
    duplicate: bool


class ReplyStartEvent(ServerEvent):
    """the bot started composing; a suggestion is for agents"""

    type: ClassVar[str] = "reply_start"
    reply_id: str
    reply_to: int
    suggestion: bool


class DeltaEvent(ServerEvent):
    """a piece of the bot's reply as it streams"""

    type: ClassVar[str] = "delta"
    reply_id: str
    text: str


class SourceShown(BaseModel):
    """A help-center article a reply stands on, as the widget lists it under the reply."""

    doc_id: str
    title: str
    excerpt: str
    url: str | None = None


def _sources(grounding: dict[str, Any] | None) -> list[SourceShown]:
    return [SourceShown.model_validate(s) for s in (grounding or {}).get("sources", [])]


class MessageEvent(ServerEvent):
    """a stored message; a grounded bot reply lists its sources, a declined one offers a person"""

    type: ClassVar[str] = "message"
    id: int
    seq: int
    role: str
    text: str
    author: str | None
    internal_note: bool  # only consoles ever receive notes
    created_at: datetime
    sources: list[SourceShown]
    offer_handoff: bool
    client_id: str | None = None
    reply_id: str | None = None

    @classmethod
    def of(cls, message: Message, **extra: Any) -> MessageEvent:
        assert message.id is not None
        return cls(
            id=message.id,
            seq=message.seq,
            role=message.role,
            text=message.text,
            author=message.author,
            internal_note=message.internal_note,
            created_at=message.created_at,
            sources=_sources(message.grounding),
            offer_handoff=bool((message.grounding or {}).get("refused")),
            **extra,
        )


class SuggestionEvent(ServerEvent):
    """consoles: a draft and its review"""

    type: ClassVar[str] = "suggestion"
    id: int
    reply_to_message_id: int
    text: str
    status: str
    final_text: str | None
    reviewer: str | None
    reason: str | None
    sources: list[SourceShown]
    reply_id: str | None = None

    @classmethod
    def of(cls, suggestion: Suggestion, **extra: Any) -> SuggestionEvent:
        assert suggestion.id is not None
        return cls(
            id=suggestion.id,
            reply_to_message_id=suggestion.reply_to_message_id,
            text=suggestion.draft_text,
            status=suggestion.status,
            final_text=suggestion.final_text,
            reviewer=suggestion.reviewer,
            reason=suggestion.reason,
            sources=_sources(suggestion.grounding),
            **extra,
        )


class ErrorEvent(ServerEvent):
    """the connection stays usable"""

    type: ClassVar[str] = "error"
    code: str
    detail: str
    client_id: str | None = None
    reply_id: str | None = None
    retry_after: float | None = None


class PongEvent(ServerEvent):
    type: ClassVar[str] = "pong"


class ReadyEvent(ServerEvent):
    """consoles: subscribed, events follow"""

    type: ClassVar[str] = "ready"


SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    IdentityEvent,
    SessionEvent,
    StatusEvent,
    TypingEvent,
    SavedEvent,
    FeedbackEvent,
    AckEvent,
    ReplyStartEvent,
    DeltaEvent,
    MessageEvent,
    SuggestionEvent,
    ErrorEvent,
    PongEvent,
    ReadyEvent,
)


_EVENT_TYPES = {event.type: event for event in SERVER_EVENTS}


def event_from_payload(payload: dict[str, Any]) -> ServerEvent:
    """The event back from its ``payload()`` (another worker's, over the bus): the same class,
    the same fields set, so it is sent exactly as the publishing worker would have sent it."""
    fields = {k: v for k, v in payload.items() if k != "type"}
    return _EVENT_TYPES[str(payload["type"])].model_validate(fields)


def _reference_line(name: str, model: type[BaseModel]) -> str:
    fields = [
        field if info.is_required() else f"{field}?"
        for field, info in model.model_fields.items()
        if field != "type" and (field != "conversation_id" or info.is_required())
    ]
    line = f"  {name}" + (f": {', '.join(fields)}" if fields else "")
    doc = (model.__doc__ or "").strip()
    return f"{line}  ({doc})" if doc else line


def protocol_reference() -> str:
    """The two lists of the module docstring, from the models themselves."""
    client = [
        _reference_line(get_args(m.model_fields["type"].annotation)[0], m) for m in CLIENT_FRAMES
    ]
    server = [_reference_line(m.type, m) for m in SERVER_EVENTS]
    return "\n".join(["Client -> server:", *client, "", "Server -> client:", *server])
