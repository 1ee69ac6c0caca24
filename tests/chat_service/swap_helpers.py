"""Helpers shared by the hot-swap tests of both engines."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from chat_service.server import BackgroundServer
from tests.chat_service.ws_client import is_bot_message, open_chat, read_until, send_message
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def unique(prefix: str) -> str:
    """Adapter names are global to an engine, which the tests share: never reuse one."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def admin(
    live: BackgroundServer, method: str, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.http_url, timeout=300) as http:
        return await http.request(
            method, f"/v1/admin/tenants/acme/adapters{path}", json=body, headers=ADMIN
        )


async def publish(live: BackgroundServer, name: str, path: object) -> httpx.Response:
    return await admin(live, "POST", "", {"name": name, "path": str(path)})


async def ask(live: BackgroundServer, text: str = "Hi, where is my latte?") -> str:
    async with open_chat(live.ws_url, "acme") as ws:
        await send_message(ws, uuid.uuid4().hex, text)
        frames = await read_until(ws, lambda f: is_bot_message(f) or f["type"] == "error")
    assert frames[-1]["type"] == "message", frames[-1]
    return str(frames[-1]["text"])
