"""The nightly schedule that `supportloop serve` keeps (APScheduler).

Training runs in a child process (`python -m supportloop finetune run`), at the lowest CPU
priority, so a night's training can neither block the event loop nor take the cores from
customers' chats; its result reaches serving through the adapter registry like any other run.
One job at a time (max_instances=1), and a run missed while the service was down is made up
within the grace period.

Every worker keeps this schedule (any of them may be the one still up at night), and each
passes the night's date: the first to claim a tenant's night in the database runs it, the
others skip it (finetune_loop.runs.claim_night). So the nightly run starts once per tenant per
night however many workers and hosts there are, with nothing to elect and no separate process.
APScheduler's own shared job stores do not give this: APScheduler 3 does not support several
schedulers sharing a store.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from core.settings import Settings

log = logging.getLogger(__name__)
MISFIRE_GRACE_S = 6 * 3600


def nightly_command(night: str) -> list[str]:
    return [sys.executable, "-m", "supportloop", "finetune", "run", "--night", night]


def night_of(at: str, timezone: str, now: datetime | None = None) -> str:
    """The date of the latest scheduled time (``at``, HH:MM) not after now, in the schedule's
    time zone: what every worker agrees on, including one that makes up a missed run hours
    later, after midnight."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone))
    hour, _, minute = at.partition(":")
    scheduled = local.replace(hour=int(hour), minute=int(minute or 0), second=0, microsecond=0)
    if scheduled > local:
        scheduled -= timedelta(days=1)
    return scheduled.date().isoformat()


def run_nightly(at: str = "03:00", timezone: str = "UTC") -> int:
    command = nightly_command(night_of(at, timezone))
    log.info("nightly fine-tuning starting: %s", " ".join(command))
    result = subprocess.run(command, preexec_fn=lambda: os.nice(19), check=False)
    log.info("nightly fine-tuning finished with exit code %d", result.returncode)
    return result.returncode


def trigger(settings: Settings) -> CronTrigger | None:
    if not settings.finetune_nightly_at:
        return None
    hour, _, minute = settings.finetune_nightly_at.partition(":")
    return CronTrigger(hour=int(hour), minute=int(minute or 0), timezone=settings.finetune_timezone)


def _schedule(settings: Settings, scheduler: BaseScheduler) -> bool:
    when = trigger(settings)
    if when is None:
        log.info("nightly fine-tuning disabled")
        return False
    scheduler.add_job(
        run_nightly,
        when,
        args=[settings.finetune_nightly_at, settings.finetune_timezone],
        id="nightly-finetune",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_S,
    )
    return True


def start_nightly(settings: Settings) -> BackgroundScheduler | None:
    """Started by `supportloop serve` unless SUPPORTLOOP_FINETUNE_NIGHTLY_AT is empty."""
    scheduler = BackgroundScheduler(timezone=settings.finetune_timezone)
    if not _schedule(settings, scheduler):
        return None
    scheduler.start()
    log.info(
        "nightly fine-tuning at %s %s (next: %s)",
        settings.finetune_nightly_at,
        settings.finetune_timezone,
        scheduler.get_job("nightly-finetune").next_run_time,
    )
    return scheduler


def run_jobs(settings: Settings) -> None:
    """`supportloop worker`: the schedule alone, in the foreground, for a deployment that keeps
    training off the serving workers (their SUPPORTLOOP_FINETUNE_NIGHTLY_AT empty). Several
    such workers are safe: the night is claimed once per tenant."""
    scheduler = BlockingScheduler(timezone=settings.finetune_timezone)
    if not _schedule(settings, scheduler):
        raise SystemExit("nothing to run: SUPPORTLOOP_FINETUNE_NIGHTLY_AT is empty")
    log.info(
        "jobs worker: nightly fine-tuning at %s %s",
        settings.finetune_nightly_at,
        settings.finetune_timezone,
    )
    scheduler.start()
