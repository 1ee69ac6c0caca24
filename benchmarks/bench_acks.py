"""Durable acknowledgements from outside: widget sockets against a real `supportloop serve`
process (bot off), next to the database's raw single-row INSERT commit rate, in one run.

Three figures per database:
- raw INSERT commits/s: the cheapest durable write, one commit (one fsync) each, sequential;
- flood: ``--sockets`` sockets each send ``--per-socket`` messages at once; acked messages/s
  and the p99 message-to-ack latency;
- paced: ``--rate`` messages/s spread over the sockets for ``--seconds``; p50/p99
  message-to-ack. An ack is sent only after the message's commit, so both measure durable
  writes. PostgreSQL needs SUPPORTLOOP_TEST_POSTGRES_URL (as for the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.chaos.server import ServerProcess
from benchmarks.chat_load import percentile
from benchmarks.databases import on_each_database
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.models import BotMode

TENANT = "bench"


def raw_inserts_per_s(url: str, count: int) -> float:
    db = create_db_engine(url)
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    start = time.perf_counter()
    for n in range(count):
        with db.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO bench_raw (id, body) VALUES (:id, :body)"),
                {"id": n, "body": f"Where is my order number {n}?"},
            )
    elapsed = time.perf_counter() - start
    db.dispose()
    return count / elapsed


def create_bench_tenant(database_url: str) -> int:
    """The benchmark tenant, bot off: what is measured is the write path, not the model."""
    db = create_db_engine(database_url)
    upgrade_database(db)
    with session_scope(db) as session:
        tenant, _ = create_tenant(session=session, slug=TENANT, bot_mode=BotMode.OFF)
    db.dispose()
    assert tenant.id is not None
    return tenant.id


@contextmanager
def serve(database_url: str, max_batch: int = 256) -> Iterator[str]:
    """A `supportloop serve` child process (its own interpreter, as in production) with the
    per-socket limits lifted; yields its ws:// base URL. ``max_batch`` 1: one commit per
    message (the write path before group commit)."""
    with ServerProcess(database_url, group_commit_max_batch=str(max_batch)) as server:
        yield server.ws_url


class Socket:
    """One widget connection that records when each message was sent and acknowledged."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.errors = 0

    async def send(self, text: str) -> None:
        client_id = uuid.uuid4().hex
        self.sent[client_id] = time.perf_counter()
        await self.ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))

    async def collect(self, expected: int) -> None:
        while len(self.latencies) + self.errors < expected:
            frame: dict[str, Any] = json.loads(await self.ws.recv())
            if frame["type"] == "ack":
                self.latencies.append(time.perf_counter() - self.sent[frame["client_id"]])
            elif frame["type"] == "error":
                self.errors += 1


async def open_sockets(ws_url: str, count: int) -> list[Socket]:
    sockets = []
    for _ in range(count):
        socket = Socket(await connect(f"{ws_url}/v1/chat/ws?tenant={TENANT}"))
        await socket.send("hello")  # the conversation starts with the first message
        await socket.collect(1)
        socket.latencies.clear()
        sockets.append(socket)
    return sockets


async def flood(ws_url: str, sockets: int, per_socket: int) -> dict[str, float]:
    opened = await open_sockets(ws_url, sockets)

    async def one(socket: Socket) -> None:
        for n in range(per_socket):
            await socket.send(f"Where is my order? message {n}")
        await socket.collect(per_socket)

    start = time.perf_counter()
    await asyncio.gather(*(one(s) for s in opened))
    elapsed = time.perf_counter() - start
    latencies = [x for s in opened for x in s.latencies]
    for s in opened:
        await s.ws.close()
    return {
        "acked_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "errors": sum(s.errors for s in opened),
    }


async def paced(ws_url: str, sockets: int, rate: float, seconds: float) -> dict[str, float]:
    return await paced_on(await open_sockets(ws_url, sockets), rate, seconds)


async def paced_on(opened: list[Socket], rate: float, seconds: float) -> dict[str, float]:
    """``rate`` messages/s spread over already open sockets (each with its conversation)."""
    sockets = len(opened)
    per_socket = int(rate * seconds / sockets)
    interval = sockets / rate

    async def one(index: int, socket: Socket) -> None:
        receiver = asyncio.create_task(socket.collect(per_socket))
        start = time.perf_counter() + index * interval / sockets  # spread evenly
        for n in range(per_socket):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await socket.send(f"Where is my order? message {n}")
        await receiver

    started = time.perf_counter()
    await asyncio.gather(*(one(i, s) for i, s in enumerate(opened)))
    elapsed = time.perf_counter() - started
    latencies = [x for s in opened for x in s.latencies]
    for s in opened:
        await s.ws.close()
    return {
        "offered_per_s": rate,
        "acked_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies),
        "errors": sum(s.errors for s in opened),
    }


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"raw_inserts_per_s": raw_inserts_per_s(url, 1000)}
    create_bench_tenant(url)
    for name, max_batch in (("one_commit_per_message", 1), ("group_commit", 256)):
        with serve(url, max_batch) as ws_url:
            result[name] = {
                "flood": asyncio.run(flood(ws_url, args.sockets, args.per_socket)),
                "paced": asyncio.run(paced(ws_url, args.sockets, args.rate, args.seconds)),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--per-socket", type=int, default=40)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--out", type=Path, default=Path("var/bench/acks.json"))
    args = parser.parse_args()

    results = on_each_database(lambda url: measure(url, args))
    print(
        "| database | write path | raw INSERT commits/s | flood acked msgs/s | flood p99 ms "
        f"| paced at {args.rate:.0f}/s: acked/s | p50 ms | p99 ms | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for path in ("one_commit_per_message", "group_commit"):
            f, p = r[path]["flood"], r[path]["paced"]
            print(
                f"| {name} | {path} | {r['raw_inserts_per_s']:.0f} | {f['acked_per_s']:.0f} | "
                f"{f['p99_ms']:.0f} | {p['acked_per_s']:.0f} | {p['p50_ms']:.1f} | "
                f"{p['p99_ms']:.1f} | {f['errors'] + p['errors']} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
