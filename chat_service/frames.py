"""The widget's WebSocket protocol: JSON text frames.

Client -> server:
  {"type": "message", "client_id": "<unique per message>", "text": "..."}
  {"type": "ping"}

Server -> client:
  {"type": "session", "conversation_id", "token"?, "last_seq"}   on connect / conversation start
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

from core.models import Message

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013


class MessageFrame(BaseModel):
    type: Literal["message"]
    client_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1)


class PingFrame(BaseModel):
    type: Literal["ping"]


ClientFrame = Annotated[MessageFrame | PingFrame, Field(discriminator="type")]
_client_frame = TypeAdapter(ClientFrame)


class FrameError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def parse_client_frame(raw: str) -> MessageFrame | PingFrame:
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
        "created_at": message.created_at.isoformat(),
        **extra,
    }
