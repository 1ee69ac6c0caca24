"""A local stand-in for HubSpot's Conversations API (crm-formats §4)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header, HTTPException

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


class FakeHubSpot:
    def __init__(self) -> None:
        self.app = FastAPI()

        @self.app.get("/conversations/v3/conversations/threads/{thread_id}/messages/{message_id}")
        def get_message(thread_id: str, message_id: str, authorization: str = Header("")) -> Any:
            if authorization != f"Bearer {TOKEN}":
                raise HTTPException(401, "unauthorized")
            if thread_id != THREAD or message_id not in MESSAGES:
                raise HTTPException(404, "not found")
            return MESSAGES[message_id]
