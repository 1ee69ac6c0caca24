"""Dashboard query time at 10k, 100k and 1M messages (synthetic), and how it grows.

For each size a fresh SQLite database gets N messages in N/10 conversations spread over 180
days, three adapter versions and a few segments. Measured in the same run on the same data:

* dashboard: everything the dashboard page shows (analytics.dashboard.dashboard_data, which
  reads only the rollups), median of 5;
* naive: one of its numbers (resolution rate per day and adapter) computed straight from the
  conversations and messages tables with SQL, median of 3, to show what the rollups save;
* refresh: folding 100 changed conversations into the rollups (the incremental path);
* build: computing all rollups from scratch once (what a first start or a rebuild costs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from analytics.dashboard import dashboard_data
from analytics.outcomes import rebuild_outcomes, refresh_outcomes
from core.crud.tenants import create_tenant
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.models import AdapterVersion, Conversation, Customer, Message, Tenant
from core.settings import Settings

WINDOW = timedelta(hours=24)
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def populate(db: sa.Engine, messages: int) -> int:
    rng = random.Random(7)
    with session_scope(db) as session:
        tenant, _ = create_tenant(session=session, slug="bench")
        assert tenant.id is not None
        tenant_id = tenant.id
        for n in range(3):
            session.add(
                AdapterVersion(
                    tenant_id=tenant_id,
                    name=f"bench-v{n}",
                    base_model="smollm2",
                    path=f"/nowhere/v{n}",
                    sha256="0" * 64,
                    status="retired",
                    activated_at=NOW - timedelta(days=180 - 60 * n),
                )
            )
    conversations = messages // 10
    customers, rows, message_rows = [], [], []
    for c in range(conversations):
        started = NOW - timedelta(days=rng.uniform(0, 180))
        adapter = 1 + min(2, int((NOW - started).days < 120) + int((NOW - started).days < 60))
        customers.append(
            {
                "tenant_id": tenant_id,
                "display_name": "",
                "verified": c % 3 == 0,
                "blocked": False,
                "tier": "gold" if c % 7 == 0 else None,
                "created_at": started,
            }
        )
        resolved = rng.random() < 0.7
        rows.append(
            {
                "tenant_id": tenant_id,
                "customer_id": c + 1,
                "channel": "widget" if c % 4 else "email",
                "source": "supportloop",
                "subject": "",
                "language": ("en", "de", "fr")[c % 3],
                "status": "resolved" if resolved else "open",
                "flagged": False,
                "last_seq": 10,
                "failed_answers": 0,
                "csat": rng.randint(1, 5) if resolved and rng.random() < 0.4 else None,
                "created_at": started,
                "updated_at": started + timedelta(minutes=30),
                "resolved_at": started + timedelta(minutes=30) if resolved else None,
            }
        )
        for seq in range(1, 11):
            role = "customer" if seq % 2 else ("bot" if seq < 8 or c % 5 else "agent")
            message_rows.append(
                {
                    "tenant_id": tenant_id,
                    "conversation_id": c + 1,
                    "seq": seq,
                    "role": role,
                    "text": f"message {seq} of conversation {c}",
                    "internal_note": False,
                    "source": "supportloop",
                    "adapter_version_id": adapter if role == "bot" else None,
                    "customer_rating": -1 if role == "bot" and rng.random() < 0.05 else None,
                    "sent_at": started + timedelta(seconds=20 * seq),
                    "created_at": started + timedelta(seconds=20 * seq),
                }
            )
    with db.begin() as conn:
        conn.execute(sa.insert(Customer.__table__), customers)  # type: ignore[attr-defined]
        conn.execute(sa.insert(Conversation.__table__), rows)  # type: ignore[attr-defined]
        for start in range(0, len(message_rows), 50_000):
            conn.execute(
                sa.insert(Message.__table__),  # type: ignore[attr-defined]
                message_rows[start : start + 50_000],
            )
    return tenant_id


NAIVE = sa.text(
    """
    SELECT date(c.created_at) AS day, m.adapter_version_id,
           avg(CASE WHEN c.status = 'resolved' THEN 1.0 ELSE 0.0 END)
    FROM conversation c
    JOIN message m ON m.conversation_id = c.id AND m.role = 'bot' AND m.seq = (
        SELECT min(seq) FROM message WHERE conversation_id = c.id AND role = 'bot')
    WHERE c.tenant_id = :tenant
    GROUP BY day, m.adapter_version_id
    """
)


def timed(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(messages: int, root: Path) -> dict[str, float]:
    db = create_db_engine(f"sqlite:///{root / f'dash-{messages}.db'}")
    upgrade_database(db)
    settings = Settings(_env_file=None, var_dir=root)  # type: ignore[call-arg]
    started = time.perf_counter()
    tenant_id = populate(db, messages)
    insert_s = time.perf_counter() - started

    def build() -> None:
        with session_scope(db) as session:
            rebuild_outcomes(session=session, tenant_id=tenant_id, followup_window=WINDOW)

    build_s = timed(build, 1)

    def dashboard() -> None:
        with session_scope(db) as session:
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            dashboard_data(session, tenant, settings, days=3660)

    def naive() -> None:
        with db.connect() as conn:
            conn.execute(NAIVE, {"tenant": tenant_id}).all()

    def refresh() -> None:
        with db.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE conversation SET updated_at = :now, csat = 5 "
                    "WHERE id IN (SELECT id FROM conversation ORDER BY id DESC LIMIT 100)"
                ),
                {"now": datetime.now(UTC).isoformat()},
            )
        with session_scope(db) as session:
            refresh_outcomes(session=session, tenant_id=tenant_id, followup_window=WINDOW)

    result = {
        "messages": messages,
        "insert_s": insert_s,
        "build_s": build_s,
        "dashboard_s": timed(dashboard, 5),
        "naive_s": timed(naive, 3),
        "refresh_100_s": timed(refresh, 3),
    }
    db.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(size, Path(tmp)) for size in args.sizes]
    print(
        "| messages | dashboard (all panels) | naive SQL, one metric | naive / dashboard "
        "| refresh 100 changed | full build |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['messages']:,} | {r['dashboard_s'] * 1000:.0f} ms | {r['naive_s'] * 1000:.0f} ms "
            f"| {r['naive_s'] / r['dashboard_s']:.1f}x | {r['refresh_100_s'] * 1000:.0f} ms "
            f"| {r['build_s']:.1f} s |"
        )
    base = results[0]
    for r in results[1:]:
        print(
            f"{r['messages']:,} vs {base['messages']:,} messages "
            f"({r['messages'] / base['messages']:.0f}x): dashboard "
            f"{r['dashboard_s'] / base['dashboard_s']:.1f}x, naive "
            f"{r['naive_s'] / base['naive_s']:.1f}x, refresh "
            f"{r['refresh_100_s'] / base['refresh_100_s']:.1f}x"
        )


if __name__ == "__main__":
    main()
