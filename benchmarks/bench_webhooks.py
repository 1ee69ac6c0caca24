"""Webhook ingestion throughput next to the database's raw INSERT rate, on SQLite and PostgreSQL.

Both are measured in the same run on the same database, one commit per event (a webhook is
acknowledged only after its own durable commit), sequentially: the ratio says what verifying,
normalising, deduplicating and storing an event costs compared with the cheapest possible
durable write. PostgreSQL needs SUPPORTLOOP_TEST_POSTGRES_URL (as for the tests).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from connectors.webhooks import Delivery, receive
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.settings import Settings

SECRET = "bench-secret"


def delivery(n: int) -> Delivery:
    raw = json.dumps(
        {
            "type": "zen:event-type:ticket.comment_added",
            "id": f"evt-{n}",
            "time": "2025-01-08T14:25:30Z",
            "detail": {"id": str(1000 + n // 4), "subject": "Order", "via": {"channel": "web"}},
            "event": {
                "comment": {
                    "id": str(n),
                    "body": f"<p>Hello, this is message {n} about my <b>latte</b> order.</p>",
                    "is_public": True,
                    "author": {"id": "1", "is_staff": n % 2 == 1, "name": "Dana"},
                }
            },
        }
    ).encode()
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(SECRET.encode(), ts.encode() + raw, hashlib.sha256).digest()
    ).decode()
    return Delivery(
        "zendesk",
        "bench",
        raw,
        {"x-zendesk-webhook-signature": signature, "x-zendesk-webhook-signature-timestamp": ts},
    )


def measure(url: str, events: int) -> dict[str, float]:
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

    start = time.perf_counter()
    for item in deliveries:
        outcome = receive(db=db, settings=settings, delivery=item)
        assert outcome.status_code == 200 and outcome.body["status"] == "processed", outcome.body
    webhook_s = time.perf_counter() - start
    db.dispose()
    return {"raw_inserts_per_s": events / raw_s, "webhook_events_per_s": events / webhook_s}


def fresh_postgres(base_url: str) -> tuple[str, sa.Engine, str]:
    name = f"sl_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        sa.make_url(base_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return (
        sa.make_url(base_url).set(database=name).render_as_string(hide_password=False),
        admin,
        name,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("var/bench/webhooks.json"))
    args = parser.parse_args()

    results = {"sqlite": measure(f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}", args.events)}
    postgres = os.environ.get(
        "SUPPORTLOOP_TEST_POSTGRES_URL"
    )  # bench harness input, like the tests
    if postgres:
        url, admin, name = fresh_postgres(postgres)
        try:
            results["postgresql"] = measure(url, args.events)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(
        "| database | raw INSERT commits/s | webhook events/s (verified, normalised, committed) | ratio |"
    )
    print("|---|---|---|---|")
    for name, r in results.items():
        ratio = r["webhook_events_per_s"] / r["raw_inserts_per_s"]
        r["ratio"] = ratio
        print(
            f"| {name} | {r['raw_inserts_per_s']:.0f} | {r['webhook_events_per_s']:.0f} | {ratio:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
