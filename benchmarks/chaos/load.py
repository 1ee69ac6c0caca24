"""Load (security goal 6 and the load figures): how many widget sockets one server process holds
with the bot off, what each costs in memory, how fast messages are acknowledged while they are
all open, and how soon connections whose client vanished are freed.

- sockets: opened in steps of ``step`` up to ``sockets`` (or until one fails to open); the
  server's RSS is read at each step, so memory per socket is the slope, not a guess;
- latency: with every socket open, ``rate`` messages/s spread over them for ``seconds``,
  timed from send to ack;
- dead peers: ``dead`` sockets held by a child process that is then frozen (SIGSTOP: its TCP
  stack still answers, its WebSocket side never does, like a phone that lost its app); the
  server's open-connection gauge is polled until they are gone, next to the promise of ping
  interval + ping timeout.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
import signal
import time
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from benchmarks.chaos.server import ServerProcess
from benchmarks.chaos.world import TENANT, database
from benchmarks.chat_load import percentile
from benchmarks.databases import backends


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def open_idle_socket(ws_url: str, tenant: str = TENANT) -> ClientConnection:
    # The client pings as rarely as the server may expect; what is measured is the server.
    return await connect(
        f"{ws_url}/v1/chat/ws?tenant={tenant}", open_timeout=60, ping_interval=None
    )


async def _hold_sockets(
    server: ServerProcess, sockets: int, step: int
) -> tuple[list[ClientConnection], list[tuple[int, int]], str | None]:
    opened: list[ClientConnection] = []
    memory = [(0, server.rss_bytes())]
    stopped = None
    while len(opened) < sockets:
        batch = min(step, sockets - len(opened))
        try:
            opened += await asyncio.gather(*(open_idle_socket(server.ws_url) for _ in range(batch)))
        except Exception as exc:  # the limit of this process, or of the machine
            stopped = f"{type(exc).__name__}: {exc}"
            break
        await asyncio.sleep(0.5)
        memory.append((len(opened), server.rss_bytes()))
    return opened, memory, stopped


async def _paced_acks(opened: list[ClientConnection], rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    sent: dict[str, float] = {}

    async def reader(ws: ClientConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "ack" and frame["client_id"] in sent:
                latencies.append(time.perf_counter() - sent.pop(frame["client_id"]))

    readers = [asyncio.create_task(reader(ws)) for ws in opened]
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client_id = uuid.uuid4().hex
        sent[client_id] = time.perf_counter()
        ws = opened[n % len(opened)]
        await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": "Hello?"}))
    deadline = time.perf_counter() + 30
    while sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return latencies


def _frozen_client(ws_url: str, count: int, ready: Any) -> None:
    """Runs in a child process: opens ``count`` sockets, says so, then waits to be frozen."""

    async def hold() -> None:
        sockets = [await open_idle_socket(ws_url) for _ in range(count)]
        ready.set()
        await asyncio.sleep(3600)
        del sockets

    asyncio.run(hold())


def _dead_peers_freed_s(server: ServerProcess, count: int, timeout_s: float) -> float | None:
    before = None
    while before is None:  # the server may still be closing the sockets of the last step
        before = server.active_widget_connections()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_frozen_client, args=(server.ws_url, count, ready))
    child.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the client process did not open its sockets")
        assert child.pid is not None
        os.kill(child.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        while time.monotonic() - frozen < timeout_s:
            now = server.active_widget_connections()
            if now is not None and now <= before:
                return time.monotonic() - frozen
            time.sleep(0.25)
        return None
    finally:
        if child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
        child.join()


def run(
    backend: str,
    sockets: int = 5000,
    step: int = 250,
    rate: float = 200,
    seconds: float = 10,
    dead: int = 200,
    ping_interval_s: float = 20,
    ping_timeout_s: float = 20,
) -> dict[str, Any]:
    raise_fd_limit()
    with database(backend) as url:
        with ServerProcess(
            url,
            ws_ping_interval_s=str(ping_interval_s),
            ws_ping_timeout_s=str(ping_timeout_s),
        ) as server:

            async def hold_and_measure() -> dict[str, Any]:
                opened, memory, stopped = await _hold_sockets(server, sockets, step)
                latencies = await _paced_acks(opened, rate, seconds)
                for ws in opened:
                    await ws.close()
                (first_n, first_rss), (last_n, last_rss) = memory[1], memory[-1]
                per_socket = (last_rss - first_rss) / max(1, last_n - first_n)
                return {
                    "sockets_held": len(opened),
                    "stopped_by": stopped,
                    "rss_mb_idle": round(memory[0][1] / 2**20, 1),
                    "rss_mb_all_open": round(last_rss / 2**20, 1),
                    "kib_per_socket": round(per_socket / 1024, 1),
                    "acks": len(latencies),
                    "ack_p50_ms": round(1000 * percentile(latencies, 0.5), 1),
                    "ack_p99_ms": round(1000 * percentile(latencies, 0.99), 1),
                }

            result: dict[str, Any] = {"backend": backend, "rate": rate}
            result |= asyncio.run(hold_and_measure())
            promise = ping_interval_s + ping_timeout_s
            freed = _dead_peers_freed_s(server, dead, timeout_s=promise * 3)
            result |= {
                "dead_peers": dead,
                "dead_freed_s": None if freed is None else round(freed, 1),
                "ping_interval_plus_timeout_s": promise,
            }
    return result


def run_all(**sizes: Any) -> list[dict[str, Any]]:
    return [run(backend, **sizes) for backend in backends()]
