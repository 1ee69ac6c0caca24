"""Chat acknowledgements while the nightly run reads a large tenant's history.

A tenant with ``--conversations`` stored conversations (six messages each) is served by a
real `supportloop serve` process, bot off. Widget sockets send ``--rate`` messages/s and time
each message-to-ack, in three windows of the same run: quiet; while a separate process builds
the nightly dataset the way the nightly run does (`read_scope`: one snapshot, chunked reads,
no write lock); and while the same build runs in an ordinary write transaction, as every
transaction did before (on SQLite, BEGIN IMMEDIATE: the write lock for the whole build).
SQLite and PostgreSQL (SUPPORTLOOP_TEST_POSTGRES_URL, as for the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import insert

from benchmarks.bench_acks import create_bench_tenant, open_sockets, paced_on, serve
from benchmarks.databases import on_each_database
from core.db import create_db_engine, read_scope, session_scope
from core.models import Conversation, ConversationStatus, Customer, Message, Role, utcnow
from core.settings import Settings
from finetune_loop.dataset import build_dataset

COFFEE_ORDERS = Path("../shared/datasets/coffee-orders/conversations.jsonl")
ROLES = {"customer": Role.CUSTOMER, "agent": Role.AGENT}


def real_chats() -> list[list[tuple[str, str]]]:
    """(role, text) turns of the shared coffee-orders chats (CC BY 4.0), cycled to fill the
    tenant: real lengths and wording rather than a template."""
    chats = []
    for line in COFFEE_ORDERS.read_text().splitlines():
        record = json.loads(line)
        chats.append(
            [(ROLES[m["role"]], m["text"]) for m in record["messages"] if m["role"] in ROLES]
        )
    return chats


def seed(url: str, tenant_id: int, conversations: int) -> None:
    """Resolved, verified conversations written in bulk (the history a large tenant has)."""
    chats = real_chats()
    db = create_db_engine(url)
    start = utcnow() - timedelta(days=30)
    with session_scope(db) as session:
        customer = Customer(tenant_id=tenant_id, verified=True)
        session.add(customer)
        session.flush()
        for first in range(0, conversations, 2000):
            rows = [
                Conversation(
                    tenant_id=tenant_id,
                    customer_id=customer.id,
                    status=ConversationStatus.RESOLVED,
                    last_seq=len(chats[n % len(chats)]),
                    created_at=start,
                    updated_at=start,
                    resolved_at=start,
                ).model_dump(exclude={"id"})
                for n in range(first, min(conversations, first + 2000))
            ]
            ids = session.scalars(
                insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True),  # type: ignore[arg-type]
                rows,
            ).all()
            messages = [
                Message(
                    tenant_id=tenant_id,
                    conversation_id=cid,
                    seq=seq,
                    role=role,
                    text=text,
                    sent_at=start,
                    created_at=start,
                ).model_dump(exclude={"id"})
                for n, cid in enumerate(ids, start=first)
                for seq, (role, text) in enumerate(chats[n % len(chats)], start=1)
            ]
            session.execute(insert(Message), messages)
    db.dispose()


def build(url: str, tenant_id: int, write_transaction: bool, reading: Any, done: Any) -> None:
    """The nightly run's dataset step (finetune_loop/steps.build without the tokenizer).
    ``reading`` is set once imports are done and the reads begin: the window measures the
    build, not a Python interpreter starting."""
    db = create_db_engine(url)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    scope = session_scope if write_transaction else read_scope
    reading.set()
    started = time.perf_counter()
    with scope(db) as session:
        dataset = build_dataset(
            session=session, tenant_id=tenant_id, settings=settings, since=None, until=utcnow()
        )
    done.put((time.perf_counter() - started, len(dataset.train) + len(dataset.validation)))
    db.dispose()


async def during(
    ws_url: str, args: argparse.Namespace, start_build: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Sockets open and conversations started first (their first writes must not wait out a
    build), then the build, then the paced window."""
    opened = await open_sockets(ws_url, args.sockets)
    if start_build is not None:
        await asyncio.to_thread(start_build)
    return await paced_on(opened, args.rate, args.seconds)


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    tenant_id = create_bench_tenant(url)
    started = time.perf_counter()
    seed(url, tenant_id, args.conversations)
    result: dict[str, Any] = {"seed_s": time.perf_counter() - started}
    context = multiprocessing.get_context("spawn")
    with serve(url) as ws_url:
        result["quiet"] = asyncio.run(during(ws_url, args))
        for name, write_transaction in (("read_scope", False), ("write_transaction", True)):
            done, reading = context.Queue(), context.Event()
            job = context.Process(
                target=build, args=(url, tenant_id, write_transaction, reading, done)
            )

            def start_build(job: Any = job, reading: Any = reading) -> None:
                job.start()
                if not reading.wait(300):
                    raise RuntimeError("the build process did not start")

            result[name] = asyncio.run(during(ws_url, args, start_build))
            build_s, examples = done.get(timeout=1800)
            job.join()
            result[name] |= {"build_s": build_s, "examples": examples}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--out", type=Path, default=Path("var/bench/nightly_acks.json"))
    args = parser.parse_args()

    results = on_each_database(lambda url: measure(url, args))
    print("| database | window | acks/s | p50 ms | p99 ms | max ms | build s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for window in ("quiet", "read_scope", "write_transaction"):
            w = r[window]
            build_s = f"{w['build_s']:.1f}" if "build_s" in w else "-"
            print(
                f"| {name} | {window} | {w['acked_per_s']:.0f} | {w['p50_ms']:.1f} | "
                f"{w['p99_ms']:.1f} | {w['max_ms']:.0f} | {build_s} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
