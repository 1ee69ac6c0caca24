"""A local stand-in for Intercom's REST API, built from the documented shapes (crm-formats §5)."""

from __future__ import annotations

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


class FakeIntercom:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0
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
            if conversation_id != CONVERSATION["id"]:
                raise HTTPException(404, "not found")
            return CONVERSATION


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
