"""A local stand-in for Zendesk's incremental export and comments API (crm-formats §2.5):
cursor pages, 429 with Retry-After, and a switch to go away mid-sync."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse

TOKEN = "zd-test-token"
PAGE_SIZE = 2


def ticket(n: int) -> dict[str, Any]:
    return {
        "id": 5150 + n,
        "subject": f"Order problem {n}",
        "status": "open",
        "requester_id": 1,
        "via": {"channel": "web"},
        "created_at": f"2025-01-0{n}T10:00:00Z",
        "updated_at": f"2025-01-0{n}T11:00:00Z",
    }


def comments(n: int) -> list[dict[str, Any]]:
    base = 9876543000 + 10 * n
    return [
        {
            "id": base + 1,
            "author_id": 1,
            "public": True,
            "body": f"Where is order {n}?",
            "plain_body": f"Where is order {n}?",
            "created_at": f"2025-01-0{n}T10:00:00Z",
        },
        {
            "id": base + 2,
            "author_id": 2,
            "public": True,
            "body": f"Order {n} ships today.",
            "plain_body": f"Order {n} ships today.",
            "created_at": f"2025-01-0{n}T10:05:00Z",
        },
        {
            "id": base + 3,
            "author_id": 2,
            "public": False,
            "body": "VIP customer",
            "plain_body": "VIP customer",
            "created_at": f"2025-01-0{n}T10:06:00Z",
        },
    ]


USERS = [
    {"id": 1, "name": "Dana Customer", "role": "end-user", "email": "dana@example.com"},
    {"id": 2, "name": "Sam Agent", "role": "agent"},
]


class FakeZendesk:
    def __init__(self, tickets: int = 5) -> None:
        self.tickets = [ticket(n) for n in range(1, tickets + 1)]
        self.page_requests: list[str] = []  # cursor (or start_time) of every export request
        self.rate_limit_next = 0  # answer this many export requests with 429 first
        self.fail_after_pages: int | None = None  # go away (500) after serving this many pages
        self.app = FastAPI()

        @self.app.get("/api/v2/incremental/tickets/cursor.json")
        def export(
            cursor: str | None = None, start_time: int = 0, authorization: str = Header("")
        ) -> Any:
            self._auth(authorization)
            if self.rate_limit_next:
                self.rate_limit_next -= 1
                return JSONResponse(
                    {"error": "TooManyRequests"}, status_code=429, headers={"Retry-After": "1"}
                )
            served = len([r for r in self.page_requests if not r.startswith("!")])
            if self.fail_after_pages is not None and served >= self.fail_after_pages:
                raise HTTPException(500, "gone")
            self.page_requests.append(cursor or f"start:{start_time}")
            offset = int(cursor) if cursor else 0
            page = self.tickets[offset : offset + PAGE_SIZE]
            after = offset + len(page)
            return {
                "tickets": page,
                "after_cursor": str(after),
                "before_cursor": None,
                "end_of_stream": after >= len(self.tickets),
            }

        @self.app.get("/api/v2/tickets/{ticket_id}/comments.json")
        def ticket_comments(
            ticket_id: int,
            authorization: str = Header(""),
            page_size: int = Query(100, alias="page[size]"),
        ) -> Any:
            self._auth(authorization)
            return {
                "comments": comments(ticket_id - 5150),
                "users": USERS,
                "meta": {"has_more": False},
            }

    @staticmethod
    def _auth(authorization: str) -> None:
        if authorization != f"Bearer {TOKEN}":
            raise HTTPException(401, "unauthorized")


@contextmanager
def running(app: FastAPI, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
