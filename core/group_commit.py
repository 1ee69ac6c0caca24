"""Group commit: many small durable writes share one transaction and one fsync.

An acknowledgement promises that the write survives a crash, so it waits for a commit; a
commit costs one fsync (SQLite WAL with synchronous=FULL, PostgreSQL's WAL flush), which is
most of a small write's price. One writer thread takes every write that arrived while the
previous commit was being flushed and runs them all in one transaction. When one write fails
(a conversation that is gone, a broken record), the batch is rolled back and every write runs
again alone, so the failure reaches only its own caller and the others commit; a write must
therefore be a pure database function, safe to run twice. No caller learns of success before
the commit that holds its write returned. At low load a batch holds one write and costs what a plain
transaction costs; under load, batches grow by themselves (no timer, no added latency).

Callers in threads use ``run``; coroutines use ``arun``, which does not block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session

from core.db import session_scope

log = logging.getLogger(__name__)

T = TypeVar("T")
Write = Callable[[Session], T]

MAX_BATCH = 256  # bounds how long one commit holds the write lock


@dataclass
class _Pending:
    write: Write[Any]
    done: Future[Any]


class GroupCommitClosedError(RuntimeError):
    pass


class GroupCommit:
    def __init__(self, db: DbEngine, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # commits made, for benchmarks and tests
        self.writes = 0

    def submit(self, write: Write[T]) -> Future[T]:
        """Queue ``write`` (run with a session inside the shared transaction); the future
        resolves with its result once the transaction is committed."""
        done: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise GroupCommitClosedError("the writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run_forever, name="group-commit", daemon=True
                )
                self._thread.start()
            self._queue.put(_Pending(write, done))
        return done

    def run(self, write: Write[T]) -> T:
        """Blocking form, for code already off the event loop (webhooks, jobs)."""
        return self.submit(write).result()

    async def arun(self, write: Write[T]) -> T:
        return await asyncio.wrap_future(self.submit(write))

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run_forever(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.done.set_running_or_notify_cancel()]
        if live:
            self._transaction(live)

    def _transaction(self, live: list[_Pending]) -> None:
        try:
            # Optimistic: no savepoint per write (two statements each). Writes almost never
            # fail; when one does, the batch is rolled back and each write runs alone.
            with session_scope(self._db) as session:
                results = [pending.write(session) for pending in live]
        except Exception as exc:
            if len(live) == 1:
                self._fail(live, exc)
            else:
                for pending in live:
                    self._transaction([pending])
            return
        self.batches += 1
        self.writes += len(live)
        for pending, result in zip(live, results, strict=True):
            pending.done.set_result(result)

    def _fail(self, pending: list[_Pending], exc: Exception) -> None:
        # The write, or the commit, failed: nothing of it is durable, so its caller is not
        # told otherwise. It may retry (writes are idempotent by client id or provider id).
        log.warning("write failed in group commit: %s", exc, exc_info=exc)
        for item in pending:
            item.done.set_exception(exc)
