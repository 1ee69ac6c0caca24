"""`supportloop serve` keeps a nightly schedule that trains in a separate, low-priority process."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from supportloop.nightly import nightly_command, start_nightly, trigger
from tests.conftest import make_settings


def test_the_run_is_scheduled_at_the_configured_local_time(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, "sqlite://", finetune_nightly_at="02:30", finetune_timezone="Europe/Berlin"
    )
    cron = trigger(settings)
    assert cron is not None
    now = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    upcoming = cron.get_next_fire_time(None, now)
    assert (upcoming.hour, upcoming.minute, upcoming.day) == (2, 30, 2)
    scheduler = start_nightly(settings)
    assert scheduler is not None
    try:
        job = scheduler.get_job("nightly-finetune")
        assert job.max_instances == 1 and job.next_run_time.tzinfo is not None
    finally:
        scheduler.shutdown(wait=False)


def test_an_empty_time_disables_it_and_the_job_is_a_separate_process(tmp_path: Path) -> None:
    assert start_nightly(make_settings(tmp_path, "sqlite://", finetune_nightly_at="")) is None
    command = [sys.executable, "-m", "supportloop", "finetune", "run", "--night", "2026-12-04"]
    assert nightly_command("2026-12-04") == command
