"""The widget's WebSocket protocol: JSON text frames.

Client -> server:
  {"type": "hello", "visitor_token"?, "customer_token"?, "language"?}  before the 1st message
  {"type": "message", "client_id": "<unique per message>", "text": "..."}
  {"type": "handoff"}                                     "talk to a human"
  {"type": "rate", "message_id", "rating": 1 | -1}        thumbs on a bot reply
  {"type": "csat", "score": 1-5}                          once the conversation is resolved
  {"type": "contact", "email"}                            when nobody could take the handoff
  {"type": "ping"}

Server -> client:
  {"type": "identity", "visitor_token"?, "verified"}          answer to hello
  {"type": "session", "conversation_id", "token"?, "last_seq", "status"}  on resume / start
  {"type": "status", "status", "assigned_agent", "offer_email", "csat"}  who has the chat
  {"type": "typing", "role": "agent", "author"}                   an agent is composing
  {"type": "saved", "what": "rating" | "csat" | "contact"}        feedback stored
  {"type": "ack", "client_id", "seq", "message_id", "duplicate"}  the customer message is stored
  {"type": "reply_start", "reply_id", "reply_to"}                 the bot started composing
  {"type": "delta", "reply_id", "text"}                           a piece of the bot reply
  {"type": "message", "seq", "id", "role", "text", "author", "created_at", "reply_id"?}
  {"type": "error", "code", "detail", "client_id"?}               the connection stays usable
  {"type": "pong"}

Close codes: 1008 unknown tenant, disallowed origin or bad token; 1009 frame over the size
limit; 1013 the client fell too far behind (reconnect and resume).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from core.models import Message, Suggestion

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013


class MessageFrame(BaseModel):
    type: Literal["message"]
    client_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1)


class PingFrame(BaseModel):
    type: Literal["ping"]


class HelloFrame(BaseModel):
    type: Literal["hello"]
    visitor_token: str | None = Field(None, max_length=2000)
    customer_token: str | None = Field(None, max_length=8000)
    language: str | None = Field(None, max_length=35, description="navigator.language")


class HandoffFrame(BaseModel):
    type: Literal["handoff"]


class RateFrame(BaseModel):
    type: Literal["rate"]
    message_id: int
    rating: Literal[1, -1]


class CsatFrame(BaseModel):
    type: Literal["csat"]
    score: int = Field(ge=1, le=5)


class ContactFrame(BaseModel):
    type: Literal["contact"]
    email: str = Field(min_length=3, max_length=320)


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


def error_frame(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "detail": detail, **extra}


def message_frame(message: Message, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": message.id,
        "seq": message.seq,
        "role": message.role,
        "text": message.text,
        "author": message.author,
        "internal_note": message.internal_note,  # only consoles ever receive notes
        "created_at": message.created_at.isoformat(),
        **extra,
    }


def suggestion_frame(suggestion: Suggestion, **extra: Any) -> dict[str, Any]:
    """For agent consoles only."""
    return {
        "type": "suggestion",
        "id": suggestion.id,
        "reply_to_message_id": suggestion.reply_to_message_id,
        "text": suggestion.draft_text,
        "status": suggestion.status,
        "final_text": suggestion.final_text,
        "reviewer": suggestion.reviewer,
        "reason": suggestion.reason,
        **extra,
    }
