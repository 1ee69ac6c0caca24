"""Webhook ingestion throughput next to the database's raw INSERT rate, on SQLite and PostgreSQL.

All in the same run on the same database. Raw INSERT: single-row commits, sequential, the
cheapest durable write. Webhooks twice: one sender (each event its own commit: what a CLI
replay does) and ``--senders`` concurrent deliveries through the service's group commit (what
a provider's burst meets: the events that arrive while one commit is flushed share the next).
A webhook is acknowledged only after its commit either way. The ratio says what verifying,
normalising, deduplicating and storing an event costs next to the cheapest durable write.
PostgreSQL needs SUPPORTLOOP_TEST_POSTGRES_URL (as for the tests).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from benchmarks.databases import on_each_database
from connectors.webhooks import Delivery, receive
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.group_commit import GroupCommit
from core.migrate import upgrade_database
from core.settings import Settings

SECRET = "bench-secret"


def delivery(n: int, tenant: str = "bench", secret: str = SECRET, run: str = "") -> Delivery:
    """A signed Zendesk comment_added delivery, event ``n`` of ``run``; four events per ticket."""
    raw = json.dumps(
        {
            "type": "zen:event-type:ticket.comment_added",
            "id": f"evt-{run}{n}",
            "time": "2025-01-08T14:25:30Z",
            "detail": {
                "id": f"{run}{1000 + n // 4}",
                "subject": "Order",
                "via": {"channel": "web"},
            },
            "event": {
                "comment": {
                    "id": f"{run}{n}",
                    "body": f"<p>Hello, this is message {n} about my <b>latte</b> order.</p>",
                    "is_public": True,
                    "author": {"id": "1", "is_staff": n % 2 == 1, "name": "Dana"},
                }
            },
        }
    ).encode()
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(secret.encode(), ts.encode() + raw, hashlib.sha256).digest()
    ).decode()
    return Delivery(
        "zendesk",
        tenant,
        raw,
        {"x-zendesk-webhook-signature": signature, "x-zendesk-webhook-signature-timestamp": ts},
    )


def measure(url: str, events: int, senders: int) -> dict[str, float]:
    db = create_db_engine(url)
    upgrade_database(db)
    with session_scope(db) as session:
        create_tenant(session=session, slug="bench")
    settings = Settings(_env_file=None, connector_secrets={"bench/zendesk": [SECRET]})  # type: ignore[call-arg]
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    deliveries = [delivery(n) for n in range(events)]  # signing is the sender's cost, not ours

    start = time.perf_counter()
    for n in range(events):
        with db.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO bench_raw (id, body) VALUES (:id, :body)"),
                {"id": n, "body": deliveries[n].raw.decode()},
            )
    raw_s = time.perf_counter() - start

    def one(item: Delivery, writes: GroupCommit | None = None) -> None:
        outcome = receive(db=db, settings=settings, delivery=item, writes=writes)
        assert outcome.status_code == 200 and outcome.body["status"] == "processed", outcome.body

    half = events // 2
    start = time.perf_counter()
    for item in deliveries[:half]:
        one(item)
    sequential_s = time.perf_counter() - start

    writes = GroupCommit(db)
    start = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(lambda item: one(item, writes), deliveries[half:]))
    concurrent_s = time.perf_counter() - start
    writes.close()
    db.dispose()
    return {
        "raw_inserts_per_s": events / raw_s,
        "webhook_events_per_s": half / sequential_s,
        "webhook_concurrent_events_per_s": (events - half) / concurrent_s,
        "commits_per_event_concurrent": writes.batches / (events - half),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("var/bench/webhooks.json"))
    args = parser.parse_args()

    results = on_each_database(lambda url: measure(url, args.events, args.senders))
    print(
        "| database | raw INSERT commits/s | webhook events/s, one sender | ratio "
        f"| webhook events/s, {args.senders} senders | ratio | commits per event |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        r["ratio"] = r["webhook_events_per_s"] / r["raw_inserts_per_s"]
        r["ratio_concurrent"] = r["webhook_concurrent_events_per_s"] / r["raw_inserts_per_s"]
        print(
            f"| {name} | {r['raw_inserts_per_s']:.0f} | {r['webhook_events_per_s']:.0f} | "
            f"{r['ratio']:.2f} | {r['webhook_concurrent_events_per_s']:.0f} | "
            f"{r['ratio_concurrent']:.2f} | {r['commits_per_event_concurrent']:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
