"""However many workers and hosts keep the nightly schedule, a tenant's night runs once: each
scheduler claims the night in the database, and one run per tenant holds the tenant's lock
(PostgreSQL advisory lock across hosts, a lock file on SQLite's one host)."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select

from core.db import session_scope
from core.models import NightlyClaim, TrainingRun
from finetune_loop.runs import RunLockedError, tenant_lock
from supportloop.nightly import night_of, nightly_command
from tests.conftest import MODEL_DIR, make_settings
from tests.factories import make_tenant


def test_every_worker_agrees_on_the_night_even_when_making_up_a_missed_run() -> None:
    at = datetime(2026, 12, 4, 3, 0, 5, tzinfo=UTC)
    assert night_of("03:00", "UTC", at) == "2026-12-04"
    assert night_of("03:00", "UTC", at.replace(hour=8)) == "2026-12-04"  # made up hours later
    # 23:30 in Berlin, made up after midnight: still the night it was scheduled for.
    late = datetime(2026, 12, 4, 23, 10, tzinfo=UTC)  # 00:10 on the 5th in Berlin
    assert night_of("23:30", "Europe/Berlin", late) == "2026-12-04"


@pytest.mark.slow  # three `finetune run` processes per database, each importing the training stack
def test_two_schedulers_firing_together_run_the_tenants_night_once(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    tenant, _ = make_tenant(db, "acme")
    env = {
        **os.environ,
        "SUPPORTLOOP_VAR_DIR": str(tmp_path),
        "SUPPORTLOOP_DATABASE_URL": db_url,
        "SUPPORTLOOP_MODEL_DIR": str(MODEL_DIR),
    }
    schedulers = [
        subprocess.Popen(nightly_command("2026-12-04"), env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [scheduler.communicate(timeout=300)[0] for scheduler in schedulers]
    assert [scheduler.returncode for scheduler in schedulers] == [0, 0], outputs
    with session_scope(db) as session:
        runs = session.exec(select(TrainingRun).where(TrainingRun.tenant_id == tenant.id)).all()
        claims = session.exec(select(NightlyClaim)).all()
    assert len(runs) == 1, outputs  # skipped for want of data, but run once
    assert [(c.tenant_id, c.night) for c in claims] == [(tenant.id, "2026-12-04")]
    assert sum("was claimed by" in output for output in outputs) == 1
    # The next night is a new claim.
    again = subprocess.run(nightly_command("2026-12-05"), env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "claimed" not in again.stdout


def test_a_second_run_of_a_tenant_is_refused_while_one_holds_its_lock(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, db_url)
    tenant, _ = make_tenant(db, "acme")
    assert tenant.id is not None
    with tenant_lock(db, settings, "acme", tenant.id):
        with pytest.raises(RunLockedError), tenant_lock(db, settings, "acme", tenant.id):
            pass
        other, _ = make_tenant(db, "globex")
        assert other.id is not None
        with tenant_lock(db, settings, "globex", other.id):
            pass  # another tenant's run is not held up
    with tenant_lock(db, settings, "acme", tenant.id):
        pass  # released
