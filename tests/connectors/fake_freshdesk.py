"""A local stand-in for Freshdesk's REST API v2 (crm-formats §6)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse

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


SECOND_TICKET: dict[str, Any] = {
    "id": 12,
    "subject": "Wrong size",
    "description": "<p>The mug I got is the small one.</p>",
    "description_text": "The mug I got is the small one.",
    "source": 2,
    "status": 2,
    "created_at": "2025-01-09T09:00:00Z",
    "updated_at": "2025-01-09T09:30:00Z",
}
SECOND_CONVERSATIONS: list[dict[str, Any]] = [
    {
        "id": 80012346001,
        "ticket_id": 12,
        "user_id": 80000000001,
        "incoming": False,
        "private": False,
        "body": "<div>We will send the large one today.</div>",
        "created_at": "2025-01-09T09:30:00Z",
    }
]


class FakeFreshdesk:
    """Tickets list paged by `per_page`/`page`, 429 + Retry-After on demand, and a switch
    that makes the list fail after some pages (a sync cut off halfway)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.tickets = {11: (TICKET, CONVERSATIONS), 12: (SECOND_TICKET, SECOND_CONVERSATIONS)}
        self.list_requests: list[tuple[str, int]] = []  # (updated_since, page) served
        self.rate_limit_next = 0
        self.fail_after_pages: int | None = None
        expected = "Basic " + base64.b64encode(f"{TOKEN}:X".encode()).decode()

        def auth(authorization: str) -> None:
            if authorization != expected:
                raise HTTPException(401, "unauthorized")

        @self.app.get("/api/v2/tickets")
        def list_tickets(
            updated_since: str,
            page: int = 1,
            per_page: int = 30,
            order_by: str = "created_at",
            authorization: str = Header(""),
        ) -> Any:
            auth(authorization)
            if self.rate_limit_next:
                self.rate_limit_next -= 1
                return JSONResponse([], status_code=429, headers={"Retry-After": "1"})
            if (
                self.fail_after_pages is not None
                and len(self.list_requests) >= self.fail_after_pages
            ):
                raise HTTPException(500, "gone")
            self.list_requests.append((updated_since, page))
            since = datetime.fromisoformat(updated_since.replace("Z", "+00:00"))
            changed = sorted(
                (
                    t
                    for t, _ in self.tickets.values()
                    if datetime.fromisoformat(t["updated_at"].replace("Z", "+00:00")) > since
                ),
                key=lambda t: t["updated_at"],
            )
            return changed[(page - 1) * per_page : page * per_page]

        @self.app.get("/api/v2/tickets/{ticket_id}")
        def get_ticket(ticket_id: int, authorization: str = Header("")) -> Any:
            auth(authorization)
            if ticket_id not in self.tickets:
                raise HTTPException(404, "not found")
            return self.tickets[ticket_id][0]

        @self.app.get("/api/v2/tickets/{ticket_id}/conversations")
        def get_conversations(
            ticket_id: int, page: int = 1, per_page: int = 30, authorization: str = Header("")
        ) -> Any:
            auth(authorization)
            return self.tickets[ticket_id][1][(page - 1) * per_page : page * per_page]
