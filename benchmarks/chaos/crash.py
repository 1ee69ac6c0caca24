"""Crash safety (security goal 9): ``runs`` times, the server is killed with SIGKILL at a random
moment while widget customers and a CRM are writing to it, then started again on the same
database.

Checked after every kill: the database is sound (SQLite `PRAGMA integrity_check`; on PostgreSQL
amcheck's `bt_index_check` on every index, heap included, and no message stored twice) and every write the server acknowledged is there:
each acked customer message (by client id, with the acked sequence number) and each webhook
event answered 2xx (by provider event id). What was sent but not acknowledged may or may not be
there; that is the contract.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from benchmarks.bench_webhooks import delivery
from benchmarks.chaos.server import ServerProcess
from benchmarks.chaos.world import TENANT, WEBHOOK_SECRET, database, webhook_settings
from benchmarks.databases import backends
from core.db import create_db_engine

log = logging.getLogger(__name__)
CUSTOMERS = 8
WEBHOOK_SENDERS = 4


@dataclass
class Acked:
    messages: dict[str, int] = field(default_factory=dict)  # client id -> seq
    events: set[str] = field(default_factory=set)  # provider event ids answered 2xx


async def _customer(ws_url: str, acked: Acked, stop: asyncio.Event) -> None:
    try:
        async with connect(f"{ws_url}/v1/chat/ws?tenant={TENANT}", open_timeout=10) as ws:
            while not stop.is_set():
                client_id = uuid.uuid4().hex
                await ws.send(
                    json.dumps({"type": "message", "client_id": client_id, "text": "Order?"})
                )
                while True:  # the ack, past the echo of the message itself
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "ack" and frame["client_id"] == client_id:
                        acked.messages[client_id] = frame["seq"]
                        break
    except (ConnectionClosed, OSError):
        return  # the server died under us: expected


async def _crm(http_url: str, run_id: str, sender: int, acked: Acked, stop: asyncio.Event) -> None:
    n = sender
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as client:
        while not stop.is_set():
            item = delivery(n, tenant=TENANT, secret=WEBHOOK_SECRET, run=run_id)
            try:
                response = await client.post(
                    f"/v1/webhooks/zendesk/{TENANT}", content=item.raw, headers=item.headers
                )
            except httpx.HTTPError:
                return
            if response.status_code < 300:
                acked.events.add(json.loads(item.raw)["id"])
            n += WEBHOOK_SENDERS


async def _load_then_kill(server: ServerProcess, run_id: str, after_s: float) -> Acked:
    acked, stop = Acked(), asyncio.Event()
    tasks = [
        asyncio.create_task(_customer(server.ws_url, acked, stop)) for _ in range(CUSTOMERS)
    ] + [
        asyncio.create_task(_crm(server.http_url, run_id, i, acked, stop))
        for i in range(WEBHOOK_SENDERS)
    ]
    await asyncio.sleep(after_s)
    await asyncio.to_thread(server.kill)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return acked


def _check(url: str, acked: Acked) -> dict[str, Any]:
    db = create_db_engine(url)
    with db.connect() as conn:
        if db.dialect.name == "sqlite":
            integrity = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
        else:
            # amcheck verifies every B-tree index against its table (it raises on corruption);
            # the unique keys must also still hold.
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            conn.execute(
                sa.text(
                    "SELECT bt_index_check(c.oid, true) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
                    "WHERE am.amname = 'btree' AND c.relnamespace = 'public'::regnamespace"
                )
            ).all()
            twice = conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT conversation_id, client_id FROM message "
                    "WHERE client_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d"
                )
            ).scalar()
            integrity = "ok" if twice == 0 else f"{twice} messages stored twice"
            conn.commit()
        stored = dict(
            conn.execute(
                sa.text("SELECT client_id, seq FROM message WHERE client_id IS NOT NULL")
            ).all()
        )
        events = set(
            conn.execute(
                sa.text("SELECT event_id FROM webhookevent WHERE status = 'processed'")
            ).scalars()
        )
    db.dispose()
    missing = [c for c, seq in acked.messages.items() if stored.get(c) != seq]
    return {
        "integrity": integrity,
        "acked_messages_missing": len(missing),
        "acked_events_missing": len(acked.events - events),
    }


def run(
    backend: str, runs: int = 200, seed: int = 11, budget_s: float | None = None
) -> dict[str, Any]:
    """``budget_s``: stop after the run that passes this much wall time (the report says how
    many kills were done)."""
    rng = random.Random(seed)
    failures: list[dict[str, Any]] = []
    acked_messages = acked_events = 0
    startups: list[float] = []
    started = time.monotonic()
    with database(backend) as url:
        server = ServerProcess(url, **webhook_settings())
        for n in range(runs):
            if budget_s is not None and time.monotonic() - started > budget_s:
                break
            startups.append(server.start())
            acked = asyncio.run(_load_then_kill(server, f"r{n}-", rng.uniform(0.2, 1.5)))
            acked_messages += len(acked.messages)
            acked_events += len(acked.events)
            result = _check(url, acked)
            if result != {
                "integrity": "ok",
                "acked_messages_missing": 0,
                "acked_events_missing": 0,
            }:
                failures.append({"run": n, **result})
            log.info("kill %d (%s): %s", n + 1, backend, result)
        server.start()  # and it still starts after the last kill
        server.terminate()
    return {
        "backend": backend,
        "kills": len(startups),
        "acked_messages": acked_messages,
        "acked_webhook_events": acked_events,
        "failed_runs": failures,
        "restart_s_median": sorted(startups)[len(startups) // 2],
        "wall_s": round(time.monotonic() - started),
    }


def run_all(runs: int = 200) -> list[dict[str, Any]]:
    return [run(backend, runs) for backend in backends()]
