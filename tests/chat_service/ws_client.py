"""A small client of the widget protocol, built on the `websockets` library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.factories import long_message

Frame = dict[str, Any]


def open_chat(
    ws_url: str, tenant: str, token: str | None = None, last_seq: int = 0, **kwargs: Any
) -> Any:
    query = f"tenant={tenant}"
    if token:
        query += f"&token={token}&last_seq={last_seq}"
    return connect(f"{ws_url}/v1/chat/ws?{query}", **kwargs)


async def send_message(ws: ClientConnection, client_id: str, text: str) -> None:
    await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))


async def read_until(
    ws: ClientConnection, done: Callable[[Frame], bool], timeout: float = 120
) -> list[Frame]:
    """Frames up to and including the first one ``done`` accepts."""
    frames: list[Frame] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if done(frame):
                return frames


def is_bot_message(frame: Frame) -> bool:
    return frame["type"] == "message" and frame["role"] == "bot"


async def no_frame_within(ws: ClientConnection, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await ws.recv()
    except TimeoutError:
        return True
    return False


async def answer_to_three_long_messages(ws_url: str, tenant: str = "acme") -> list[Frame]:
    """Three customer messages of 3,900 characters in a row (over 2,000 tokens together), and
    every frame up to the bot's answer to the last of them."""
    async with open_chat(ws_url, tenant) as ws:
        for n in range(3):
            await send_message(ws, f"long-{n}", long_message(n))
        last_seq = 0
        frames: list[Frame] = []
        while True:
            frames += await read_until(ws, lambda f: f["type"] in ("ack", "message", "error"))
            frame = frames[-1]
            if frame["type"] == "ack" and frame["client_id"] == "long-2":
                last_seq = frame["seq"]
            if frame["type"] == "error" or (
                frame.get("role") == "bot" and last_seq and frame["seq"] > last_seq
            ):
                return frames
