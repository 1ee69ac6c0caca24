"""Soak: ``minutes`` of mixed traffic on one server, bot on (the real model, short replies):
customers chatting (new conversations keep starting), an agent in the console (its live
socket, the conversation list, replies of its own), and a CRM delivering webhooks.

Reported per window of ``window_s``: customer ack p50/p99, bot replies, webhook p99, errors,
server RSS. The service passes when errors are 0 and the last window looks like the first:
memory that keeps growing, or latency that creeps up, is a leak however slow.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect

from benchmarks.bench_webhooks import delivery
from benchmarks.chaos.server import ServerProcess
from benchmarks.chaos.world import (
    AGENT_EMAIL,
    AGENT_PASSWORD,
    TENANT,
    WEBHOOK_SECRET,
    database,
    webhook_settings,
)
from benchmarks.chat_load import percentile
from benchmarks.databases import backends
from core.models import BotMode

QUESTIONS = ["Where is my latte?", "Can I change my order to oat milk?", "Are you open Sunday?"]


@dataclass
class Window:
    acks: list[float] = field(default_factory=list)
    webhooks: list[float] = field(default_factory=list)
    bot_replies: int = 0
    console_events: int = 0
    errors: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, server: ServerProcess, window_s: float) -> None:
        self.server = server
        self.window_s = window_s
        self.started = time.monotonic()
        self.windows: list[Window] = []
        self.stop = asyncio.Event()

    def now(self) -> Window:
        index = int((time.monotonic() - self.started) // self.window_s)
        while len(self.windows) <= index:
            self.windows.append(Window())
        return self.windows[index]

    async def customer(self, n: int) -> None:
        """Conversations of three questions each, one after another, waiting for the bot."""
        while not self.stop.is_set():
            try:
                async with connect(f"{self.server.ws_url}/v1/chat/ws?tenant={TENANT}") as ws:
                    for question in QUESTIONS:
                        client_id, sent = uuid.uuid4().hex, time.perf_counter()
                        text = f"{question} (customer {n})"
                        await ws.send(
                            json.dumps({"type": "message", "client_id": client_id, "text": text})
                        )
                        while True:
                            frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
                            if frame["type"] == "ack" and frame["client_id"] == client_id:
                                self.now().acks.append(time.perf_counter() - sent)
                            elif frame["type"] == "message" and frame["role"] == "bot":
                                self.now().bot_replies += 1
                                break
                            elif frame["type"] == "error":
                                self.now().errors.append(f"widget: {frame}")
                                break
            except Exception as exc:
                self.now().errors.append(f"widget: {type(exc).__name__}: {exc}")
                await asyncio.sleep(1)

    async def agent(self) -> None:
        """Signs in, keeps the console socket open, lists conversations, leaves notes."""
        headers = {"Origin": self.server.http_url}
        async with httpx.AsyncClient(
            base_url=self.server.http_url, headers=headers, timeout=30
        ) as client:
            signed_in = await client.post(
                "/console/api/login",
                json={"tenant": TENANT, "email": AGENT_EMAIL, "password": AGENT_PASSWORD},
            )
            signed_in.raise_for_status()
            csrf = signed_in.json()["csrf_token"]
            # The session cookie is Secure; httpx keeps those for https only, so it is sent
            # by hand (a browser sends it to http://localhost too).
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            client.headers["Cookie"] = cookie
            listener = asyncio.create_task(self.console_socket(cookie))
            try:
                while not self.stop.is_set():
                    listed = await client.get("/console/api/conversations")
                    if listed.status_code != 200:
                        self.now().errors.append(f"console list: {listed.status_code}")
                    else:
                        for item in listed.json()[:1]:
                            answered = await client.post(
                                f"/console/api/conversations/{item['id']}/messages",
                                # A note, not a takeover: the bot keeps answering.
                                json={"text": "Checked this order.", "internal_note": True},
                                headers={"X-CSRF-Token": csrf},
                            )
                            if answered.status_code != 201:
                                self.now().errors.append(f"console reply: {answered.text}")
                    await asyncio.sleep(5)
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def console_socket(self, cookie: str) -> None:
        headers = {"Cookie": cookie, "Origin": self.server.http_url}
        async with connect(f"{self.server.ws_url}/console/ws", additional_headers=headers) as ws:
            async for _ in ws:
                self.now().console_events += 1

    async def crm(self, per_s: float) -> None:
        n = 0
        async with httpx.AsyncClient(base_url=self.server.http_url, timeout=30) as client:
            while not self.stop.is_set():
                item = delivery(n, tenant=TENANT, secret=WEBHOOK_SECRET, run="soak-")
                started = time.perf_counter()
                response = await client.post(
                    f"/v1/webhooks/zendesk/{TENANT}", content=item.raw, headers=item.headers
                )
                if response.status_code == 200:
                    self.now().webhooks.append(time.perf_counter() - started)
                else:
                    self.now().errors.append(f"webhook {response.status_code}: {response.text}")
                n += 1
                await asyncio.sleep(1 / per_s)

    async def run(self, seconds: float, customers: int, webhooks_per_s: float) -> None:
        tasks = [asyncio.create_task(self.customer(n)) for n in range(customers)]
        tasks += [asyncio.create_task(self.agent()), asyncio.create_task(self.crm(webhooks_per_s))]
        rss: list[int] = []
        while time.monotonic() - self.started < seconds:
            await asyncio.sleep(self.window_s / 4)
            rss.append(self.server.rss_bytes())
            self.now()
        self.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.rss = rss


def _summary(window: Window, rss_mb: float) -> dict[str, Any]:
    return {
        "acks": len(window.acks),
        "ack_p50_ms": round(1000 * percentile(window.acks, 0.5), 1) if window.acks else None,
        "ack_p99_ms": round(1000 * percentile(window.acks, 0.99), 1) if window.acks else None,
        "bot_replies": window.bot_replies,
        "webhooks": len(window.webhooks),
        "webhook_p99_ms": round(1000 * percentile(window.webhooks, 0.99), 1)
        if window.webhooks
        else None,
        "console_events": window.console_events,
        "errors": len(window.errors),
        "rss_mb": round(rss_mb, 1),
    }


def run(
    backend: str,
    minutes: float = 30,
    window_s: float = 300,
    customers: int = 4,
    webhooks_per_s: float = 2,
) -> dict[str, Any]:
    with database(backend, bot_mode=BotMode.AUTO) as url:
        with ServerProcess(url, max_new_tokens="12", **webhook_settings()) as server:
            soak = Soak(server, window_s)
            asyncio.run(soak.run(minutes * 60, customers, webhooks_per_s))
    windows = soak.windows[: int(minutes * 60 // window_s)] or soak.windows[:1]
    per_window = len(soak.rss) // max(1, len(windows))
    summaries = [
        _summary(w, max(soak.rss[i * per_window : (i + 1) * per_window] or [0]) / 2**20)
        for i, w in enumerate(windows)
    ]
    errors = [e for w in soak.windows for e in w.errors]
    return {
        "backend": backend,
        "minutes": minutes,
        "windows": summaries,
        "errors": len(errors),
        "first_errors": errors[:5],
        "rss_growth_mb": round((soak.rss[-1] - soak.rss[0]) / 2**20, 1) if soak.rss else None,
    }


def run_all(**sizes: Any) -> list[dict[str, Any]]:
    return [run(backend, **sizes) for backend in backends()]
