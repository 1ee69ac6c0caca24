"""A local stand-in for Freshdesk's REST API v2 (crm-formats §6)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import FastAPI, Header, HTTPException

TOKEN = "fd-api-key"
TICKET: dict[str, Any] = {
    "id": 11,
    "subject": "Refund not received",
    "description": "<div>I was promised a refund two weeks ago.</div>",
    "description_text": "I was promised a refund two weeks ago.",
    "source": 1,
    "status": 2,
    "created_at": "2025-01-08T14:00:00Z",
    "updated_at": "2025-01-08T14:40:00Z",
}
CONVERSATIONS: list[dict[str, Any]] = [
    {
        "id": 80012345001,
        "ticket_id": 11,
        "incoming": True,
        "private": False,
        "source": 0,
        "body": '<div dir="ltr">Any update?<br><br><div class="gmail_quote">On Mon, Sam wrote:<blockquote>We are on it.</blockquote></div></div>',
        "body_text": "Any update? On Mon, Sam wrote: We are on it.",
        "created_at": "2025-01-08T14:25:30Z",
    },
    {
        "id": 80012345002,
        "ticket_id": 11,
        "incoming": False,
        "private": True,
        "source": 2,
        "body": "<div>Refund stuck in finance queue.</div>",
        "body_text": "Refund stuck in finance queue.",
        "created_at": "2025-01-08T14:40:00Z",
    },
]


class FakeFreshdesk:
    def __init__(self) -> None:
        self.app = FastAPI()
        expected = "Basic " + base64.b64encode(f"{TOKEN}:X".encode()).decode()

        def auth(authorization: str) -> None:
            if authorization != expected:
                raise HTTPException(401, "unauthorized")

        @self.app.get("/api/v2/tickets/{ticket_id}")
        def get_ticket(ticket_id: int, authorization: str = Header("")) -> Any:
            auth(authorization)
            if ticket_id != TICKET["id"]:
                raise HTTPException(404, "not found")
            return TICKET

        @self.app.get("/api/v2/tickets/{ticket_id}/conversations")
        def get_conversations(ticket_id: int, authorization: str = Header("")) -> Any:
            auth(authorization)
            return CONVERSATIONS
