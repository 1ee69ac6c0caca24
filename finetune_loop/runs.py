"""A nightly run's bookkeeping: its row, its directory, its lock, and how it ends.

Each run has a row (TrainingRun: window, configuration, dataset card, status) and a directory
(var/finetune/<tenant>/run-<id>/) holding the training files, the trainer's checkpoint, the
candidate and the report. A run that was killed is found still `running` and continued with
the same window and data; only one run per tenant is in progress at a time (a lock file).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from core.crud.tenants import require_tenant
from core.db import session_scope
from core.models import TrainingRun, TrainingRunStatus, utcnow
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


@contextmanager
def tenant_lock(settings: Settings, slug: str) -> Iterator[None]:
    path = tenant_dir(settings, slug)
    path.mkdir(parents=True, exist_ok=True)
    with (path / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"a fine-tuning run for {slug!r} is already in progress") from None
        yield


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
