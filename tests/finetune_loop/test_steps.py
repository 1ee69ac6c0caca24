"""The nightly recipe's steps, each alone: no training here, just the step on its inputs
(the whole recipe runs for real in test_nightly_loop.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine

from core.chat_format import Turn
from core.db import session_scope
from core.models import TrainingRun, TrainingRunStatus
from core.settings import Settings
from finetune_loop import steps
from finetune_loop.dataset import Dataset, Example
from finetune_loop.runs import NightlyRun, RunResult, claim_run, training_config
from finetune_loop.trainer import TrainResult
from tests.conftest import make_settings
from tests.factories import make_tenant

REFERENCE = {"loss": [2.0, 2.2, 1.9, 2.1], "rouge_l": [0.3, 0.1, 0.5, 0.2], "bleu": [5, 2, 9, 4]}
WORSE = {**REFERENCE, "loss": [2.9, 3.1, 2.8, 3.0]}


def scored(candidate: dict[str, list[float]], reference: str = "active") -> steps.Scored:
    def model(values: dict[str, list[float]]) -> dict[str, object]:
        return {"loss": sum(values["loss"]) / 4, "canary_leaks": 0, "per_example": values}

    models = {"base": model(REFERENCE), "candidate": model(candidate)}
    if reference == "active":
        models["active"] = model(REFERENCE)
    for values in models.values():
        values["replies"] = ["Sure, one latte."]
    return steps.Scored({"validation": models}, reference)  # type: ignore[dict-item]


def example(n: int) -> Example:
    turns = [
        Turn("system", "You help."),
        Turn("user", f"Question {n}?"),
        Turn("assistant", f"Answer {n}.", train=True),
    ]
    return Example(f"c{n}", n, f"customer:{n}", turns, [n], None)


def nightly(db: DbEngine, settings: Settings) -> NightlyRun:
    tenant, _ = make_tenant(db, "acme")
    assert tenant.id is not None
    return claim_run(db=db, settings=settings, tenant_slug="acme", tenant_id=tenant.id, full=False)


def test_too_few_new_examples_skip_the_night_and_say_why(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite://", finetune_min_examples=5)
    few = Dataset(train=[example(1)], validation=[], card={"new_examples": 1})
    assert steps.skip_reason(settings, few, force=False) == (
        "1 new examples, fewer than the 5 a run needs"
    )
    assert steps.skip_reason(settings, few, force=True) is None
    empty = Dataset(train=[], validation=[], card={"new_examples": 0})
    assert steps.skip_reason(settings, empty, force=True) == "no training examples at all"


def test_the_gate_step_rejects_a_candidate_worse_than_what_serves(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite://")
    rejected = steps.gate(settings, scored(WORSE))
    assert not rejected.promote
    assert any(r.startswith("validation: FAIL loss") for r in rejected.reasons)
    assert "per_example" not in rejected.metrics["validation"]["candidate"]
    assert steps.gate(settings, scored(REFERENCE, reference="base")).promote


def test_the_trainer_rank_is_capped_at_what_serving_accepts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite://", max_lora_rank=4)
    assert settings.training.lora_rank == 8
    assert training_config(settings).lora_rank == 4


def test_a_rejected_candidate_gets_its_own_status_and_its_files_go(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    run = nightly(db, make_settings(tmp_path, db_url))
    (candidate := run.work / "candidate").mkdir(parents=True)
    trained = steps.Trained("acme-r1", candidate, TrainResult(4, 0, 100, 1.5, 2.0), ["X"])
    dataset = Dataset(train=[example(1)], validation=[example(2)], card={"new_examples": 1})
    verdict = steps.gate(run.settings, scored(WORSE))
    page = steps.report(run, dataset, trained, scored(WORSE), verdict)

    outcome = steps.reject(run, dataset, trained, verdict, page)

    assert outcome.status == RunResult.REJECTED and "FAIL loss" in outcome.reason
    assert not candidate.exists()
    with session_scope(db) as session:
        row = session.get(TrainingRun, run.id)
        assert row is not None and row.status == TrainingRunStatus.REJECTED
        assert row.error and row.error.startswith("gate rejected the candidate: validation: FAIL")
        assert row.config["report"] == str(page) and row.config["lora_rank"] == 8


def test_the_report_step_writes_the_verdict_samples_and_production_drift(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    run = nightly(db, make_settings(tmp_path, db_url))
    trained = steps.Trained("acme-r1", run.work / "c", TrainResult(4, 2, 100, 1.5, 2.0), [])
    dataset = Dataset(train=[example(1)], validation=[example(2)], card={"new_examples": 1})

    page = steps.report(
        run, dataset, trained, scored(REFERENCE), steps.gate(run.settings, scored(REFERENCE))
    )

    data = json.loads(page.with_suffix(".json").read_text())
    assert data["decision"]["verdict"] == "promote" and data["drift"] == []
    assert data["samples"] == [
        {
            "prompt": "Question 2?",
            "reference": "Answer 2.",
            "replies": dict.fromkeys(("base", "candidate", "active"), "Sure, one latte."),
        }
    ]
    assert "resumed at 2" in data["summary"] and "<h2>Segments worse" in page.read_text()


def test_a_tainted_serving_version_makes_the_night_retrain_on_full_history(
    db: DbEngine, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a provider deleted something the active version learnt from, the next night
    trains on everything left, however little is new (the recipe itself is stubbed: this test
    is about the run it is handed)."""
    from core.models import AdapterVersion, Tenant
    from finetune_loop import run as nightly

    settings = make_settings(tmp_path, db_url)
    tenant, _ = make_tenant(db)
    handed: list[tuple[NightlyRun, bool]] = []

    def recipe(run: NightlyRun, *, force: bool = False, progress: object = None) -> object:
        handed.append((run, force))
        run.finish(TrainingRunStatus.SKIPPED, error="stub")
        return None

    monkeypatch.setattr(nightly, "recipe", recipe)
    nightly.run_once(db=db, settings=settings, tenant_slug="acme")
    assert handed[-1][1] is False  # a clean tenant: an ordinary night
    with session_scope(db) as session:
        version = AdapterVersion(
            tenant_id=tenant.id,
            name="v1",
            base_model="b",
            path="/p",
            sha256="0" * 64,
            status="active",
            tainted=True,
        )
        session.add(version)
        session.flush()
        row = session.get(Tenant, tenant.id)
        assert row is not None
        row.active_adapter_id = version.id
        session.add(row)
    nightly.run_once(db=db, settings=settings, tenant_slug="acme")
    run, force = handed[-1]
    assert force is True
    with session_scope(db) as session:
        row = session.get(TrainingRun, run.id)
        assert row is not None and row.window_start is None  # all history
