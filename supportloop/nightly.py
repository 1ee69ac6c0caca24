"""The nightly schedule that `supportloop serve` keeps (APScheduler).

Training runs in a child process (`python -m supportloop finetune run`), at the lowest CPU
priority, so a night's training can neither block the event loop nor take the cores from
customers' chats; its result reaches serving through the adapter registry like any other run.
One job at a time (max_instances=1), and a run missed while the service was down is made up
within the grace period.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from core.settings import Settings

log = logging.getLogger(__name__)
MISFIRE_GRACE_S = 6 * 3600


def nightly_command() -> list[str]:
    return [sys.executable, "-m", "supportloop", "finetune", "run"]


def run_nightly() -> int:
    log.info("nightly fine-tuning starting: %s", " ".join(nightly_command()))
    result = subprocess.run(nightly_command(), preexec_fn=lambda: os.nice(19), check=False)
    log.info("nightly fine-tuning finished with exit code %d", result.returncode)
    return result.returncode


def trigger(settings: Settings) -> CronTrigger | None:
    if not settings.finetune_nightly_at:
        return None
    hour, _, minute = settings.finetune_nightly_at.partition(":")
    return CronTrigger(hour=int(hour), minute=int(minute or 0), timezone=settings.finetune_timezone)


def start_nightly(settings: Settings) -> BackgroundScheduler | None:
    """Started by `supportloop serve` unless SUPPORTLOOP_FINETUNE_NIGHTLY_AT is empty."""
    when = trigger(settings)
    if when is None:
        log.info("nightly fine-tuning disabled")
        return None
    scheduler = BackgroundScheduler(timezone=settings.finetune_timezone)
    scheduler.add_job(
        run_nightly,
        when,
        id="nightly-finetune",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_S,
    )
    scheduler.start()
    log.info(
        "nightly fine-tuning at %s %s (next: %s)",
        settings.finetune_nightly_at,
        settings.finetune_timezone,
        scheduler.get_job("nightly-finetune").next_run_time,
    )
    return scheduler
