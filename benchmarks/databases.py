"""The databases a benchmark runs on: a fresh SQLite file always, and a fresh PostgreSQL database
where the harness names a server (SUPPORTLOOP_TEST_POSTGRES_URL, as for the tests), dropped
afterwards. Every benchmark and chaos scenario compares the two the same way."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")


def backends() -> list[str]:
    """SQLite always; PostgreSQL where the harness gives one."""
    return (
        ["sqlite", "postgresql"] if os.environ.get("SUPPORTLOOP_TEST_POSTGRES_URL") else ["sqlite"]
    )


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """An empty database of ``backend``; yields its URL."""
    if backend == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp(prefix='sl-bench-db-')) / 'bench.db'}"
        return
    base = sa.make_url(os.environ["SUPPORTLOOP_TEST_POSTGRES_URL"])
    name = f"sl_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def on_each_database(measure: Callable[[str], T]) -> dict[str, T]:
    """``measure(url)`` on a fresh database of every backend, keyed by backend."""
    results = {}
    for backend in backends():
        with fresh_database(backend) as url:
            results[backend] = measure(url)
    return results
