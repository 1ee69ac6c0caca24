"""Embedded engine called directly vs. through the WebSocket service, side by side.

Measures time to first token (TTFT) and tokens/s at 1 and 8 concurrent chats. The two paths
alternate within one run (direct, service, direct, service, …) so machine noise hits both
alike; the headline is the ratio, not the absolute numbers. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from websockets.asyncio.client import connect

from chat_service.app import create_app
from chat_service.engine import ChatTurn, SamplingParams
from chat_service.engine.embedded import EmbeddedEngine
from chat_service.server import BackgroundServer
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.settings import Settings

QUESTIONS = [
    "Hi, can I change my order to an oat milk latte?",
    "Where is my coffee order? It has been 20 minutes.",
    "Do you have decaf espresso beans in stock?",
    "How do I cancel my subscription?",
    "Can I get a refund for a cold cappuccino?",
    "What are your opening hours on Sunday?",
    "Is the caramel syrup vegan?",
    "Can I pick up my order at the downtown store?",
]


@dataclass
class Sample:
    path: str
    concurrency: int
    ttft_s: list[float]
    tokens: int
    wall_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def direct_round(engine: EmbeddedEngine, settings: Settings, concurrency: int) -> Sample:
    params = SamplingParams(max_tokens=settings.max_new_tokens, temperature=0.0)
    tokenizer = engine._tokenizer  # noqa: SLF001  (counting tokens the same way for both paths)

    async def one(question: str) -> tuple[float, int]:
        turns = [ChatTurn("system", settings.system_prompt), ChatTurn("user", question)]
        start, first, text = time.perf_counter(), None, ""
        async for piece in engine.stream_chat(turns, params=params):
            first = first or time.perf_counter() - start
            text += piece
        return first or 0.0, len(tokenizer.encode(text.strip(), add_special_tokens=False))

    start = time.perf_counter()
    results = await asyncio.gather(*(one(QUESTIONS[i % 8]) for i in range(concurrency)))
    wall = time.perf_counter() - start
    return Sample("direct", concurrency, [r[0] for r in results], sum(r[1] for r in results), wall)


async def service_round(
    server: BackgroundServer, engine: EmbeddedEngine, concurrency: int
) -> Sample:
    tokenizer = engine._tokenizer  # noqa: SLF001

    async def one(question: str) -> tuple[float, int]:
        async with connect(f"{server.ws_url}/v1/chat/ws?tenant=bench") as ws:
            start, first = time.perf_counter(), None
            await ws.send(
                json.dumps({"type": "message", "client_id": uuid.uuid4().hex, "text": question})
            )
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "delta" and first is None:
                    first = time.perf_counter() - start
                if frame["type"] == "message" and frame["role"] == "bot":
                    return first or 0.0, len(
                        tokenizer.encode(frame["text"], add_special_tokens=False)
                    )
                if frame["type"] == "error":
                    raise RuntimeError(frame)

    start = time.perf_counter()
    results = await asyncio.gather(*(one(QUESTIONS[i % 8]) for i in range(concurrency)))
    wall = time.perf_counter() - start
    return Sample("service", concurrency, [r[0] for r in results], sum(r[1] for r in results), wall)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per setting")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("var/bench/chat.json"))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sl-bench-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        var_dir=workdir,
        model_dir=Path("var/models/smollm2-135m-instruct"),
        demo_tenant="",
        max_new_tokens=args.max_tokens,
        temperature=0.0,
        port=free_port(),
    )
    db = create_db_engine(settings.resolved_database_url)
    upgrade_database(db)
    with session_scope(db) as session:
        create_tenant(session=session, slug="bench")
    db.dispose()

    engine = EmbeddedEngine(settings.resolved_model_dir)
    asyncio.run(engine.start())
    samples: list[Sample] = []
    with BackgroundServer(settings, create_app(settings, engine=engine)) as server:
        asyncio.run(direct_round(engine, settings, 1))  # warm-up
        for concurrency in (1, 8):
            for _ in range(args.rounds):
                samples.append(asyncio.run(direct_round(engine, settings, concurrency)))
                samples.append(asyncio.run(service_round(server, engine, concurrency)))
    asyncio.run(engine.close())

    rows = []
    for concurrency in (1, 8):
        stats = {}
        for path in ("direct", "service"):
            chosen = [s for s in samples if s.path == path and s.concurrency == concurrency]
            ttfts = [t for s in chosen for t in s.ttft_s]
            stats[path] = {
                "tokens_per_s": statistics.median(s.tokens_per_s for s in chosen),
                "ttft_p50_ms": 1000 * percentile(ttfts, 0.5),
                "ttft_p95_ms": 1000 * percentile(ttfts, 0.95),
            }
        overhead = stats["direct"]["tokens_per_s"] / stats["service"]["tokens_per_s"] - 1
        rows.append({"concurrency": concurrency, **stats, "throughput_overhead": overhead})

    print("| chats | path | tokens/s | TTFT p50 ms | TTFT p95 ms |")
    print("|---|---|---|---|---|")
    for row in rows:
        for path in ("direct", "service"):
            s = row[path]
            print(
                f"| {row['concurrency']} | {path} | {s['tokens_per_s']:.1f} | "
                f"{s['ttft_p50_ms']:.0f} | {s['ttft_p95_ms']:.0f} |"
            )
    for row in rows:
        ttft_ratio = row["service"]["ttft_p50_ms"] / row["direct"]["ttft_p50_ms"]
        print(
            f"{row['concurrency']} chat(s): service throughput overhead "
            f"{100 * row['throughput_overhead']:+.1f}%, "
            f"TTFT p50 ratio service/direct {ttft_ratio:.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows": rows, "samples": [asdict(s) for s in samples]}, indent=2)
    )


if __name__ == "__main__":
    main()
