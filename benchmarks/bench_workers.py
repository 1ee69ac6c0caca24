"""Several workers behind a load balancer, and what the shared bus costs.

Per worker count (``--workers``, default 1, 2 and 4): a fresh PostgreSQL database, that many
`supportloop serve` processes sharing it and the machine's Redis (their own key prefix), HAProxy
in front (round robin, WebSockets passed through), as `docker-compose.yml` deploys them. Bot off:
what is measured is the chat path, not the model.

- sockets held: idle widget sockets opened through the balancer in steps of ``--step`` up to
  ``--sockets-per-worker`` times the worker count (or until one fails), with the workers'
  total RSS;
- acks: ``--flood-sockets`` sockets (the balancer spreads them over the workers) each send
  ``--per-socket`` messages at once; acked messages/s and p99 message-to-ack, each ack after
  the commit that holds its message.

The bus: ``--events`` events published on one hub at ``--rate``/s to a subscriber of the same
process (the in-memory hub) and to a subscriber of another worker (two RedisHubs, each with its
own client, as two processes have): publish -> delivered, p50/p99.

Ratios are to one worker, measured in the same run; client, balancer, workers and databases all
share this machine's cores, which is what the ratios say about it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from benchmarks.balancer import Balancer
from benchmarks.bench_acks import TENANT, flood
from benchmarks.chaos.load import open_idle_socket, raise_fd_limit
from benchmarks.chaos.server import ServerProcess
from benchmarks.chaos.world import add_tenants
from benchmarks.chat_load import percentile
from benchmarks.databases import fresh_database
from chat_service.frames import TypingEvent
from chat_service.hub import ConversationHub, Subscription
from chat_service.redis_hub import RedisHub
from core.models import BotMode
from core.settings import Settings

REDIS_URL = Settings().redis_url or "redis://127.0.0.1:6379/0"


@contextmanager
def deployment(workers: int) -> Iterator[tuple[Balancer, list[ServerProcess]]]:
    with fresh_database("postgresql") as url:
        add_tenants(url, {TENANT: BotMode.OFF})
        shared = {
            "redis_url": REDIS_URL,
            "redis_prefix": f"bench-workers:{uuid.uuid4().hex}",
            "finetune_nightly_at": "",
        }
        processes = [ServerProcess(url, **shared) for _ in range(workers)]
        try:
            with ThreadPoolExecutor(workers) as pool:  # they start side by side
                list(pool.map(lambda p: p.start(), processes))
            with Balancer([p.port for p in processes]) as balancer:
                yield balancer, processes
        finally:
            for process in processes:
                if process.process is not None and process.process.poll() is None:
                    process.terminate()


async def hold_sockets(
    balancer: Balancer, processes: list[ServerProcess], target: int, step: int
) -> dict[str, Any]:
    idle_rss = sum(p.rss_bytes() for p in processes)
    opened: list[Any] = []
    stopped = None
    while len(opened) < target:
        batch = min(step, target - len(opened))
        try:
            opened += await asyncio.gather(
                *(open_idle_socket(balancer.ws_url, TENANT) for _ in range(batch))
            )
        except Exception as exc:  # a limit of this machine or of the service
            stopped = f"{type(exc).__name__}: {exc}"
            break
    await asyncio.sleep(1)
    all_open_rss = sum(p.rss_bytes() for p in processes)
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return {
        "target": target,
        "sockets_held": len(opened),
        "stopped_by": stopped,
        "rss_mb_idle": round(idle_rss / 2**20),
        "rss_mb_all_open": round(all_open_rss / 2**20),
    }


def measure_workers(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    with deployment(workers) as (balancer, processes):
        sockets = asyncio.run(
            hold_sockets(balancer, processes, args.sockets_per_worker * workers, args.step)
        )
        acks = asyncio.run(flood(balancer.ws_url, args.flood_sockets, args.per_socket))
    return {"workers": workers, "sockets": sockets, "acks": acks}


async def bus_latency(events: int, rate: float) -> dict[str, dict[str, float]]:
    """publish -> delivered on a subscriber, in one process and across two over Redis."""
    channel = f"bench-bus:{uuid.uuid4().hex}"
    client_a, client_b = redis.from_url(REDIS_URL), redis.from_url(REDIS_URL)
    worker_a, worker_b = RedisHub(client_a, channel=channel), RedisHub(client_b, channel=channel)
    await worker_a.start()
    await worker_b.start()
    try:
        results = {}
        for name, publisher, receiver in (
            ("in-process", ConversationHub(), None),
            ("redis", worker_a, worker_b),
        ):
            subscription = Subscription()
            latencies: list[float] = []
            with (receiver or publisher).subscribe(1, 1, subscription):
                start = time.perf_counter()
                for n in range(events):
                    delay = start + n / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    sent = time.perf_counter()
                    publisher.publish(1, 1, TypingEvent(role="agent", author=str(n)))
                    await asyncio.wait_for(subscription.queue.get(), 5)
                    latencies.append(time.perf_counter() - sent)
            results[name] = {
                "events": len(latencies),
                "p50_ms": 1000 * percentile(latencies, 0.5),
                "p99_ms": 1000 * percentile(latencies, 0.99),
            }
        return results
    finally:
        for hub, client in ((worker_a, client_a), (worker_b, client_b)):
            await hub.close()
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--sockets-per-worker", type=int, default=1500)
    parser.add_argument("--step", type=int, default=250)
    parser.add_argument("--flood-sockets", type=int, default=50)
    parser.add_argument("--per-socket", type=int, default=40)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--out", type=Path, default=Path("var/bench/workers.json"))
    args = parser.parse_args()
    raise_fd_limit()

    bus = asyncio.run(bus_latency(args.events, args.rate))
    rows = [measure_workers(n, args) for n in args.workers]
    base = rows[0]
    print(
        "| workers | sockets held (target) | ratio | workers' RSS idle -> all open MB "
        "| flood acked msgs/s | ratio | p99 ms | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        s, a = row["sockets"], row["acks"]
        print(
            f"| {row['workers']} | {s['sockets_held']} ({s['target']}) | "
            f"{s['sockets_held'] / base['sockets']['sockets_held']:.2f} | "
            f"{s['rss_mb_idle']} -> {s['rss_mb_all_open']} | {a['acked_per_s']:.0f} | "
            f"{a['acked_per_s'] / base['acks']['acked_per_s']:.2f} | {a['p99_ms']:.0f} | "
            f"{a['errors']} |"
        )
    print("| bus | events | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, b in bus.items():
        print(f"| {name} | {b['events']} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"workers": rows, "bus": bus}, indent=2))


if __name__ == "__main__":
    main()
