"""Chat load shared by the benchmarks: the same questions, timed the same way on every path."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from core.chat_format import Turn
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.settings import Settings
from engines import Engine, SamplingParams

MODEL_DIR = Path("var/models/smollm2-135m-instruct")
TENANT = "bench"

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_settings(max_tokens: int, **overrides: Any) -> Settings:
    """Settings for a benchmark service in a fresh temp dir, its database migrated and the
    benchmark tenant created: greedy replies, so every path produces the same text."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        var_dir=Path(tempfile.mkdtemp(prefix="sl-bench-")),
        model_dir=MODEL_DIR,
        demo_tenant="",
        max_new_tokens=max_tokens,
        temperature=0.0,
        port=free_port(),
        **overrides,
    )
    db = create_db_engine(settings.resolved_database_url)
    upgrade_database(db)
    with session_scope(db) as session:
        create_tenant(session=session, slug=TENANT)
    db.dispose()
    return settings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def engine_round(
    path: str,
    engine: Engine,
    tokenizer: Any,
    system_prompt: str,
    concurrency: int,
    max_tokens: int,
) -> Sample:
    """``concurrency`` chats straight into an engine."""
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)

    async def one(question: str) -> tuple[float, int]:
        turns = [Turn("system", system_prompt), Turn("user", question)]
        start, first, text = time.perf_counter(), None, ""
        async for piece in engine.stream_chat(turns, params=params):
            first = first or time.perf_counter() - start
            text += piece
        return first or 0.0, len(tokenizer.encode(text.strip(), add_special_tokens=False))

    start = time.perf_counter()
    results = await asyncio.gather(*(one(QUESTIONS[i % 8]) for i in range(concurrency)))
    wall = time.perf_counter() - start
    return Sample(path, concurrency, [r[0] for r in results], sum(r[1] for r in results), wall)


async def ask_service(ws_url: str, tenant: str, question: str) -> tuple[float, str]:
    """Time to first delta, and the stored reply, for one question over the widget socket."""
    async with connect(f"{ws_url}/v1/chat/ws?tenant={tenant}") as ws:
        start, first = time.perf_counter(), None
        await ws.send(
            json.dumps({"type": "message", "client_id": uuid.uuid4().hex, "text": question})
        )
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "delta" and first is None:
                first = time.perf_counter() - start
            if frame["type"] == "message" and frame["role"] == "bot":
                return first or 0.0, str(frame["text"])
            if frame["type"] == "error":
                raise RuntimeError(frame)


async def service_round(
    path: str, ws_url: str, tenant: str, tokenizer: Any, concurrency: int
) -> Sample:
    """``concurrency`` customers chatting through the WebSocket service."""
    start = time.perf_counter()
    results = await asyncio.gather(
        *(ask_service(ws_url, tenant, QUESTIONS[i % 8]) for i in range(concurrency))
    )
    wall = time.perf_counter() - start
    tokens = sum(len(tokenizer.encode(text, add_special_tokens=False)) for _, text in results)
    return Sample(path, concurrency, [r[0] for r in results], tokens, wall)


def summarise(samples: list[Sample], paths: list[str]) -> list[dict[str, Any]]:
    rows = []
    for concurrency in sorted({s.concurrency for s in samples}):
        row: dict[str, Any] = {"concurrency": concurrency}
        for path in paths:
            chosen = [s for s in samples if s.path == path and s.concurrency == concurrency]
            ttfts = [t for s in chosen for t in s.ttft_s]
            row[path] = {
                "tokens_per_s": statistics.median(s.tokens_per_s for s in chosen),
                "ttft_p50_ms": 1000 * percentile(ttfts, 0.5),
                "ttft_p95_ms": 1000 * percentile(ttfts, 0.95),
            }
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]], paths: list[str]) -> None:
    print("| chats | path | tokens/s | TTFT p50 ms | TTFT p95 ms |")
    print("|---|---|---|---|---|")
    for row in rows:
        for path in paths:
            s = row[path]
            print(
                f"| {row['concurrency']} | {path} | {s['tokens_per_s']:.1f} | "
                f"{s['ttft_p50_ms']:.0f} | {s['ttft_p95_ms']:.0f} |"
            )
