"""A nightly run's bookkeeping: its row, its directory, its lock, and how it ends.

Each run has a row (TrainingRun: window, configuration, dataset card, status) and a directory
(var/finetune/<tenant>/run-<id>/) holding the training files, the trainer's checkpoint, the
candidate and the report. A run that was killed is found still `running` and continued with
the same window and data; only one run per tenant is in progress at a time: a lock file on
SQLite (one host), a PostgreSQL advisory lock otherwise, so that workers on several hosts
sharing the database exclude each other too. However many schedulers fire for a night, a
tenant's nightly run is claimed once (claim_night).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from core.crud.tenants import require_tenant
from core.db import insert_if_absent, session_scope
from core.models import NightlyClaim, TrainingRun, TrainingRunStatus, utcnow
from core.settings import Settings, TrainingConfig

log = logging.getLogger(__name__)


class RunLockedError(RuntimeError):
    pass


class RunResult(StrEnum):
    PUBLISHED = "published"  # the run succeeded: a new version waits in the registry
    REJECTED = "rejected"  # the gate refused the candidate
    SKIPPED = "skipped"  # too little new data to train on


@dataclass
class RunOutcome:
    run_id: int | None
    status: RunResult
    reason: str
    adapter: str | None = None
    metrics: dict[str, Any] | None = None
    report: Path | None = None


def tenant_dir(settings: Settings, slug: str) -> Path:
    return settings.training_dir(slug)


# The advisory-lock namespace of nightly runs (the second key is the tenant id).
ADVISORY_LOCK_CLASS = 0x5E7A


@contextmanager
def tenant_lock(db: DbEngine, settings: Settings, slug: str, tenant_id: int) -> Iterator[None]:
    """One run per tenant at a time: across hosts on PostgreSQL, across processes on SQLite."""
    if db.dialect.name == "postgresql":
        with _advisory_lock(db, tenant_id, slug):
            yield
        return
    path = tenant_dir(settings, slug)
    path.mkdir(parents=True, exist_ok=True)
    with (path / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"a fine-tuning run for {slug!r} is already in progress") from None
        yield


@contextmanager
def _advisory_lock(db: DbEngine, tenant_id: int, slug: str) -> Iterator[None]:
    """A session-level lock on a connection kept for the run: it outlives transactions, and a
    process that dies loses it with its connection."""
    key = {"cls": ADVISORY_LOCK_CLASS, "tenant": tenant_id}
    with db.connect() as connection:
        taken = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:cls, :tenant)"), key
        ).scalar_one()
        connection.commit()
        if not taken:
            raise RunLockedError(f"a fine-tuning run for {slug!r} is already in progress")
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:cls, :tenant)"), key)
            connection.commit()


_CLAIMS = NightlyClaim.__table__  # type: ignore[attr-defined]
_CLAIM = insert_if_absent(_CLAIMS)


def claim_night(*, db: DbEngine, tenant_id: int, night: str) -> str | None:
    """Claim the tenant's run for ``night``. Returns None when claimed now, else who has it."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    with session_scope(db) as session:
        inserted = session.execute(
            _CLAIM[db.dialect.name].values(
                tenant_id=tenant_id, night=night, claimed_by=worker, claimed_at=utcnow()
            )
        )
        if inserted.first() is not None:
            return None
        holder = session.exec(
            select(NightlyClaim.claimed_by).where(
                NightlyClaim.tenant_id == tenant_id, NightlyClaim.night == night
            )
        ).one()
        return holder


def training_config(settings: Settings) -> TrainingConfig:
    """The configured trainer, its rank capped at what serving accepts."""
    rank = min(settings.training.lora_rank, settings.max_lora_rank)
    return settings.training.model_copy(update={"lora_rank": rank})


@dataclass(frozen=True)
class NightlyRun:
    """What every step of the recipe works on: one tenant, one claimed run row."""

    db: DbEngine
    settings: Settings
    slug: str
    tenant_id: int
    row: TrainingRun  # detached: read its window and configuration, never write through it
    resumed: bool

    @property
    def id(self) -> int:
        assert self.row.id is not None
        return self.row.id

    @property
    def work(self) -> Path:
        return tenant_dir(self.settings, self.slug) / f"run-{self.id}"

    @property
    def context(self) -> str:
        return f"tenant={self.slug} run={self.id}"

    def finish(self, status: TrainingRunStatus, **fields: Any) -> None:
        with session_scope(self.db) as session:
            row = session.get(TrainingRun, self.id)
            assert row is not None
            row.status = status
            row.finished_at = utcnow()
            for key, value in fields.items():
                setattr(row, key, value)
            session.add(row)


def tenant_id_of(db: DbEngine, slug: str) -> int:
    with session_scope(db) as session:
        tenant_id = require_tenant(session=session, slug=slug).id
        assert tenant_id is not None
        return tenant_id


def claim_run(
    *, db: DbEngine, settings: Settings, tenant_slug: str, tenant_id: int, full: bool
) -> NightlyRun:
    """The run a crash left `running` (resumed), or a new one for the window since the last
    successful run (all history when ``full``: a retrain after an erasure). Call it holding
    the tenant's lock."""
    with session_scope(db) as session:
        crashed = session.exec(
            select(TrainingRun).where(
                TrainingRun.tenant_id == tenant_id, TrainingRun.status == TrainingRunStatus.RUNNING
            )
        ).first()
        row = crashed or _new_run(session, tenant_id, settings, full)
        session.flush()
        session.expunge(row)
        return NightlyRun(db, settings, tenant_slug, tenant_id, row, resumed=crashed is not None)


def _new_run(session: Any, tenant_id: int, settings: Settings, full: bool) -> TrainingRun:
    last = session.exec(
        select(TrainingRun)
        .where(
            TrainingRun.tenant_id == tenant_id, TrainingRun.status == TrainingRunStatus.SUCCEEDED
        )
        .order_by(col(TrainingRun.id).desc())
    ).first()
    row = TrainingRun(
        tenant_id=tenant_id,
        status=TrainingRunStatus.RUNNING,
        window_start=last.window_end if last and not full else None,
        window_end=utcnow(),
        started_at=utcnow(),
        config=training_config(settings).model_dump(),
    )
    session.add(row)
    return row
