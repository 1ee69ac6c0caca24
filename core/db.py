"""Database engines and sessions, with the same guarantees on SQLite and PostgreSQL.

SQLite is the zero-config default, so it is configured for durability rather than speed:
WAL (readers never block the writer), synchronous=FULL (a committed write survives power
loss; NORMAL can lose it), foreign keys on (off by default in SQLite), and BEGIN IMMEDIATE
so two writers never deadlock upgrading read locks. Work that only reads (the nightly dataset
build, planning a reply) uses `read_scope`: a deferred transaction, one consistent WAL snapshot
that never takes the write lock, so a long read cannot stall a customer's acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "supportloop_read_only"
# The server runs blocking database work on AnyIO's 40 worker threads plus its own writers.
POOL_SIZE = 20
POOL_OVERFLOW = 30


def create_db_engine(url: str) -> Engine:
    """Build an engine for ``url``; a SQLite file's folder is created if missing."""
    sa_url = sa.make_url(url)
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
    # Connections are kept, not opened per request: every thread of the server's pool can
    # hold one (overflow connections are closed on return, and opening one costs a backend
    # fork on PostgreSQL and a round of PRAGMAs, under the database lock, on SQLite).
    pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    if sa_url.get_backend_name() != "sqlite":
        return sa.create_engine(sa_url, pool_pre_ping=True, **pool)

    if sa_url.database and sa_url.database != ":memory:":
        Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        sa_url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE below is honoured.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL is a property of the file: switching needs a lock, so only a new file pays it.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work that only reads: one snapshot (a deferred WAL transaction on SQLite, which
    takes no write lock; READ ONLY REPEATABLE READ on PostgreSQL), never committed, so
    nothing written in it is kept."""
    if engine.dialect.name == "postgresql":
        bind = engine.execution_options(postgresql_readonly=True, isolation_level="REPEATABLE READ")
    else:
        bind = engine.execution_options(**{READ_ONLY: True})
    # Closing (not rolling back) ends the transaction without expiring what was read, so the
    # rows stay usable after the scope, as with session_scope.
    with Session(bind, expire_on_commit=False, autoflush=False) as session:
        yield session


# Long reads go in chunks of ids: SQLite refuses more than 32,766 bound parameters in one
# statement, and a short statement per chunk keeps each read's memory and planning bounded.
ID_CHUNK = 500


def id_chunks(ids: Iterable[int], size: int = ID_CHUNK) -> Iterator[list[int]]:
    """``ids`` sorted, ``size`` at a time (for ``IN (...)`` queries over a large tenant)."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def insert_if_absent(table: sa.Table) -> dict[str, Any]:
    """An INSERT ... ON CONFLICT DO NOTHING RETURNING id per dialect name, built once.

    For writes that may come twice (a retried message, a redelivered event, a second worker's
    claim): the unique key refuses the copy without an error, so the rest of the transaction
    stands, and an empty RETURNING tells the caller it was already there."""
    return {
        "sqlite": sqlite_insert(table).on_conflict_do_nothing().returning(table.c.id),
        "postgresql": postgresql_insert(table).on_conflict_do_nothing().returning(table.c.id),
    }


def check_database(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query (used by /readyz)."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
