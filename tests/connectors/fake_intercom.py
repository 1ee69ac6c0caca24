"""A local stand-in for Intercom's REST API, built from the documented shapes (crm-formats §5)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException

TOKEN = "ic-test-token"

CONVERSATION: dict[str, Any] = {
    "type": "conversation",
    "id": "215472580981234",
    "created_at": 1736340000,
    "updated_at": 1736346330,
    "source": {
        "type": "conversation",
        "id": "2501234567",
        "delivered_as": "customer_initiated",
        "subject": "",
        "body": "The app crashes when I open settings.",
        "author": {"type": "user", "id": "66f0c0ffee", "name": "Dana Customer"},
    },
    "state": "open",
    "conversation_parts": {
        "type": "conversation_part.list",
        "conversation_parts": [
            {
                "type": "conversation_part",
                "id": "28463510",
                "part_type": "assignment",
                "body": None,
                "created_at": 1736340100,
                "author": {"type": "bot", "id": "1", "name": "Operator"},
            },
            {
                "type": "conversation_part",
                "id": "28463511",
                "part_type": "comment",
                "body": "Sorry about that! Which version are you on?",
                "created_at": 1736340200,
                "author": {"type": "admin", "id": "7654321", "name": "Sam Agent"},
            },
            {
                "type": "conversation_part",
                "id": "28463512",
                "part_type": "note",
                "body": "Known crash, see JIRA-12",
                "created_at": 1736340300,
                "author": {"type": "admin", "id": "7654321", "name": "Sam Agent"},
            },
            {
                "type": "conversation_part",
                "id": "28463513",
                "part_type": "comment",
                "body": "Hi, I'm the bot with a suggestion",
                "created_at": 1736340400,
                "author": {"type": "bot", "id": "2", "name": "Fin"},
            },
            {
                "type": "conversation_part",
                "id": "28463517",
                "part_type": "comment",
                "body": "Still broken after the update.",
                "created_at": 1736346329,
                "author": {"type": "user", "id": "66f0c0ffee", "name": "Dana Customer"},
            },
        ],
        "total_count": 5,
    },
}


def second_conversation() -> dict[str, Any]:
    """Another conversation, for paging: same shape, its own ids."""
    import copy

    other = copy.deepcopy(CONVERSATION)
    other["id"], other["updated_at"] = "215472580989999", 1736350000
    for part in other["conversation_parts"]["conversation_parts"]:
        part["id"] = "9" + part["id"]
    return other


class FakeIntercom:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.searches: list[dict[str, Any]] = []
        # Tests edit these (redact a part, delete a conversation) as an admin would in Intercom.
        self.conversations = {
            c["id"]: copy.deepcopy(c) for c in (CONVERSATION, second_conversation())
        }
        self.app = FastAPI()

        @self.app.get("/conversations/{conversation_id}")
        def get_conversation(
            conversation_id: str,
            authorization: str = Header(""),
            intercom_version: str = Header(""),
        ) -> dict[str, Any]:
            self.calls += 1
            if not self.up:
                raise HTTPException(503, "maintenance")
            if authorization != f"Bearer {TOKEN}" or not intercom_version:
                raise HTTPException(401, "unauthorized")
            if conversation_id not in self.conversations:
                raise HTTPException(404, "not found")
            return self.conversations[conversation_id]

        @self.app.post("/conversations/search")
        def search(body: dict[str, Any], authorization: str = Header("")) -> dict[str, Any]:
            if authorization != f"Bearer {TOKEN}":
                raise HTTPException(401, "unauthorized")
            self.searches.append(body)
            after = body["query"]["value"]
            matching = [c for c in self.conversations.values() if c["updated_at"] > after]
            start = 1 if body["pagination"].get("starting_after") == "page-2" else 0
            page = matching[start : start + 1]
            more = start + 1 < len(matching)
            return {
                "type": "conversation.list",
                "conversations": [{"id": c["id"], "updated_at": c["updated_at"]} for c in page],
                "total_count": len(matching),
                "pages": {"next": {"starting_after": "page-2"}} if more else {},
            }


@contextmanager
def running_fake_intercom(port: int) -> Iterator[FakeIntercom]:
    fake = FakeIntercom()
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
