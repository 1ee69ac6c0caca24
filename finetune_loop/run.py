"""One night of the loop for one tenant, as a recipe:

    dataset -> train -> score -> gate -> report -> publish (or reject)

The steps live in finetune_loop/steps.py, each taking what the one before produced; the run's
row, directory and lock in finetune_loop/runs.py. A run ends `succeeded` (a new version is in
the registry, `approved`: serving activates it), `rejected` (the gate's verdict), `skipped`
(too little new data) or `failed` (an error, which propagates). A killed run is continued by
the next call with the same window and data; the trainer resumes from its checkpoint.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine as DbEngine

from core.crud.adapters import active_adapter
from core.db import read_scope
from core.models import TrainingRunStatus
from core.settings import Settings
from finetune_loop import steps
from finetune_loop.runs import (
    NightlyRun,
    RunLockedError,
    RunOutcome,
    RunResult,
    claim_night,
    claim_run,
    tenant_dir,
    tenant_id_of,
    tenant_lock,
)

__all__ = ["RunLockedError", "RunOutcome", "RunResult", "recipe", "run_once", "tenant_dir"]

log = logging.getLogger(__name__)


def run_once(
    *,
    db: DbEngine,
    settings: Settings,
    tenant_slug: str,
    force: bool = False,
    full: bool = False,
    progress: steps.Progress | None = None,
    night: str | None = None,
) -> RunOutcome:
    """`force`: train however few new examples there are. `full`: all history, not just the
    window since the last run (a retrain after an erasure). `night`: a scheduled run for that
    night, skipped when another scheduler (worker, host) has claimed it."""
    tenant_id = tenant_id_of(db, tenant_slug)
    if night is not None and (holder := claim_night(db=db, tenant_id=tenant_id, night=night)):
        log.info("tenant=%s the %s run belongs to %s", tenant_slug, night, holder)
        return RunOutcome(None, RunResult.SKIPPED, f"the {night} run was claimed by {holder}")
    if _serving_tainted(db, tenant_id) and not full:
        # A provider redacted or deleted something this version learnt from: the night
        # retrains on everything that is left, however little is new.
        log.info("tenant=%s serves a tainted version: full retrain", tenant_slug)
        force = full = True
    with tenant_lock(db, settings, tenant_slug, tenant_id):
        run = claim_run(
            db=db, settings=settings, tenant_slug=tenant_slug, tenant_id=tenant_id, full=full
        )
        try:
            return recipe(run, force=force, progress=progress)
        except Exception as exc:
            log.exception("fine-tuning failed (%s)", run.context)
            run.finish(TrainingRunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise


def _serving_tainted(db: DbEngine, tenant_id: int) -> bool:
    with read_scope(db) as session:
        active = active_adapter(session=session, tenant_id=tenant_id)
        return active is not None and active.tainted


def recipe(
    run: NightlyRun, *, force: bool = False, progress: steps.Progress | None = None
) -> RunOutcome:
    dataset = steps.build(run)
    if reason := steps.skip_reason(run.settings, dataset, force):
        return steps.skip(run, dataset, reason)
    trained = steps.train(run, dataset, progress)
    scored = steps.score(run, dataset, trained)
    verdict = steps.gate(run.settings, scored)
    page = steps.report(run, dataset, trained, scored, verdict)
    if not verdict.promote:
        return steps.reject(run, dataset, trained, verdict, page)
    return steps.publish(run, dataset, trained, verdict, page)
