"""A local stand-in for HubSpot's Conversations API (crm-formats §4)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

TOKEN = "hs-test-token"
THREAD = "8273645501"
MESSAGES: dict[str, dict[str, Any]] = {
    "f1a2b3c4d5e6478899aabbccddeeff00": {
        "type": "MESSAGE",
        "id": "f1a2b3c4d5e6478899aabbccddeeff00",
        "conversationsThreadId": THREAD,
        "createdAt": "2025-01-08T14:25:29Z",
        "createdBy": "V-5501",
        "senders": [{"actorId": "V-5501", "name": "Dana Customer"}],
        "subject": "Order 4411",
        "text": "My order 4411 never arrived.",
        "richText": "<div>My order 4411 never arrived.</div>",
        "truncationStatus": "NOT_TRUNCATED",
        "direction": "INCOMING",
        "channelId": "1000",
    },
    "0aa1bb2cc3dd4ee5ff6677889900aabb": {
        "type": "COMMENT",
        "id": "0aa1bb2cc3dd4ee5ff6677889900aabb",
        "conversationsThreadId": THREAD,
        "createdAt": "2025-01-08T14:30:02Z",
        "createdBy": "A-60001",
        "senders": [{"actorId": "A-60001", "name": "Sam Agent"}],
        "text": "@Lee can you check the carrier?",
        "richText": "<p>@Lee can you check the carrier?</p>",
    },
    "bot0000000000000000000000000000": {
        "type": "MESSAGE",
        "id": "bot0000000000000000000000000000",
        "conversationsThreadId": THREAD,
        "createdAt": "2025-01-08T14:31:00Z",
        "createdBy": "I-3456789",
        "senders": [{"actorId": "I-3456789", "name": "SupportLoop"}],
        "text": "An automated reply",
        "direction": "OUTGOING",
        "channelId": "1000",
    },
}


SECOND_THREAD = "8273645502"
SECOND: dict[str, dict[str, Any]] = {
    "c0ffee00000000000000000000000001": {
        "type": "MESSAGE",
        "id": "c0ffee00000000000000000000000001",
        "conversationsThreadId": SECOND_THREAD,
        "createdAt": "2025-01-09T09:00:00Z",
        "createdBy": "V-5502",
        "senders": [{"actorId": "V-5502", "name": "Lee Customer"}],
        "text": "Can I change my delivery address?",
        "direction": "INCOMING",
        "channelId": "1000",
    },
    "c0ffee00000000000000000000000002": {
        "type": "MESSAGE",
        "id": "c0ffee00000000000000000000000002",
        "conversationsThreadId": SECOND_THREAD,
        "createdAt": "2025-01-09T09:05:00Z",
        "createdBy": "A-60001",
        "senders": [{"actorId": "A-60001", "name": "Sam Agent"}],
        "text": "Yes, until it ships.",
        "direction": "OUTGOING",
        "channelId": "1000",
    },
}
PAGE_SIZE = 2


class FakeHubSpot:
    """Serves the threads list (one thread a page) and each thread's messages (two a page)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.threads: dict[str, dict[str, dict[str, Any]]] = {
            THREAD: MESSAGES,
            SECOND_THREAD: SECOND,
        }
        self.listings: list[dict[str, str]] = []  # query of every threads-list request
        self.rate_limit_next = 0

        def latest(thread_id: str) -> str:
            return max(m["createdAt"] for m in self.threads[thread_id].values())

        @self.app.get("/conversations/v3/conversations/threads")
        def list_threads(request: Request, authorization: str = Header("")) -> Any:
            if authorization != f"Bearer {TOKEN}":
                raise HTTPException(401, "unauthorized")
            if self.rate_limit_next:
                self.rate_limit_next -= 1
                return JSONResponse({}, status_code=429, headers={"Retry-After": "1"})
            query = dict(request.query_params)
            self.listings.append(query)
            if "latestMessageTimestampAfter" not in query:
                raise HTTPException(400, "latestMessageTimestampAfter is required")
            after = query["latestMessageTimestampAfter"]
            found = sorted(
                (latest(t), t) for t in self.threads if latest(t) > after
            )  # ISO-8601 UTC strings sort as times
            start = int(query.get("after") or 0)
            page = found[start : start + 1]
            body: dict[str, Any] = {
                "results": [{"id": t, "latestMessageTimestamp": ts} for ts, t in page]
            }
            if start + 1 < len(found):
                body["paging"] = {"next": {"after": str(start + 1)}}
            return body

        @self.app.get("/conversations/v3/conversations/threads/{thread_id}/messages")
        def list_messages(
            thread_id: str, after: str | None = None, authorization: str = Header("")
        ) -> Any:
            if authorization != f"Bearer {TOKEN}":
                raise HTTPException(401, "unauthorized")
            messages = sorted(self.threads[thread_id].values(), key=lambda m: m["createdAt"])
            start = int(after or 0)
            body: dict[str, Any] = {"results": messages[start : start + PAGE_SIZE]}
            if start + PAGE_SIZE < len(messages):
                body["paging"] = {"next": {"after": str(start + PAGE_SIZE)}}
            return body

        @self.app.get("/conversations/v3/conversations/threads/{thread_id}/messages/{message_id}")
        def get_message(thread_id: str, message_id: str, authorization: str = Header("")) -> Any:
            if authorization != f"Bearer {TOKEN}":
                raise HTTPException(401, "unauthorized")
            if message_id not in self.threads.get(thread_id, {}):
                raise HTTPException(404, "not found")
            return self.threads[thread_id][message_id]
