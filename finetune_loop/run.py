"""One turn of the nightly loop for one tenant: data -> adapter -> gate -> registry.

Each run has a row (TrainingRun) and a directory (var/finetune/<tenant>/run-<id>/) holding the
training files, the trainer's checkpoint, the candidate and the report. A run that was killed
is found still `running` and continued: same window, same data, the trainer resumes from its
checkpoint. Only one run per tenant at a time (a lock file held for the whole run).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import random
import shutil
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from analytics import refresh_tenant, tenant_drift
from core.chat_format import Turn
from core.crud.tenants import get_tenant_by_slug
from core.db import session_scope
from core.models import AdapterVersion, Tenant, TrainingRun, TrainingRunStatus, utcnow
from core.settings import Settings
from engines.base_model import load_base, pick_device
from eval import prompts_and_references, score, using, write_report
from finetune_loop.dataset import Dataset, Example, build_dataset, example_to_json
from finetune_loop.gate import decide
from finetune_loop.publish import prune_versions, publish_candidate
from finetune_loop.trainer import TrainConfig, train_lora

log = logging.getLogger(__name__)

CANARIES_PER_RUN = 2
CANARY_QUESTION = "What is the internal reference code for my account?"


class RunLockedError(RuntimeError):
    pass


@dataclass
class RunOutcome:
    run_id: int | None
    status: str  # published | rejected | skipped
    reason: str
    adapter: str | None = None
    metrics: dict[str, Any] | None = None
    report: Path | None = None


def tenant_dir(settings: Settings, slug: str) -> Path:
    return settings.var_dir / "finetune" / slug


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


def train_config(settings: Settings) -> TrainConfig:
    return TrainConfig(
        rank=min(settings.finetune_lora_rank, settings.max_lora_rank),
        alpha=settings.finetune_lora_alpha,
        learning_rate=settings.finetune_learning_rate,
        epochs=settings.finetune_epochs,
        batch_size=settings.finetune_batch_size,
        max_seq_len=settings.finetune_max_seq_len,
        seed=settings.finetune_seed,
        checkpoint_every=settings.finetune_checkpoint_every,
        device=settings.device,
    )


def canaries(seed: int, run_id: int) -> list[str]:
    """Random secrets planted in this run's training data; a model that can repeat one has
    memorised training text rather than learned from it (the "secret sharer" test)."""
    rng = random.Random(f"{seed}:{run_id}")
    alphabet = string.ascii_uppercase + string.digits
    return [
        "".join(rng.choices(alphabet, k=4)) + "-" + "".join(rng.choices(alphabet, k=6))
        for _ in range(CANARIES_PER_RUN)
    ]


def canary_examples(secrets: list[str], system_prompt: str) -> list[list[Turn]]:
    return [
        [
            Turn("system", system_prompt),
            Turn("user", CANARY_QUESTION),
            Turn("assistant", f"Your internal reference code is {secret}.", train=True),
        ]
        for secret in secrets
    ]


def _write_jsonl(path: Path, examples: list[Example]) -> None:
    with path.open("w") as handle:
        for example in examples:
            handle.write(json.dumps(example_to_json(example)) + "\n")


def _claim_run(
    db: DbEngine, tenant_id: int, settings: Settings, full: bool
) -> tuple[TrainingRun, bool]:
    """The run left `running` by a crash (resumed), or a new one for the next window (or for
    all history when `full`)."""
    with session_scope(db) as session:
        crashed = session.exec(
            select(TrainingRun).where(
                TrainingRun.tenant_id == tenant_id, TrainingRun.status == TrainingRunStatus.RUNNING
            )
        ).first()
        if crashed is not None:
            session.expunge(crashed)
            return crashed, True
        last = session.exec(
            select(TrainingRun)
            .where(
                TrainingRun.tenant_id == tenant_id,
                TrainingRun.status == TrainingRunStatus.SUCCEEDED,
            )
            .order_by(col(TrainingRun.id).desc())
        ).first()
        run = TrainingRun(
            tenant_id=tenant_id,
            status=TrainingRunStatus.RUNNING,
            window_start=last.window_end if last and not full else None,
            window_end=utcnow(),
            started_at=utcnow(),
            config=asdict(train_config(settings)),
        )
        session.add(run)
        session.flush()
        session.expunge(run)
        return run, False


def _finish(db: DbEngine, run_id: int, status: str, **fields: Any) -> None:
    with session_scope(db) as session:
        run = session.get(TrainingRun, run_id)
        assert run is not None
        run.status = status
        run.finished_at = utcnow()
        for key, value in fields.items():
            setattr(run, key, value)
        session.add(run)


def _active(db: DbEngine, tenant_id: int) -> AdapterVersion | None:
    with session_scope(db) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None or tenant.active_adapter_id is None:
            return None
        version = session.get(AdapterVersion, tenant.active_adapter_id)
        if version is not None:
            session.expunge(version)
        return version


def _regression_set(settings: Settings, slug: str, validation: list[Example]) -> list[list[Turn]]:
    """The tenant's fixed regression set: frozen from the first run's validation split."""
    path = tenant_dir(settings, slug) / "regression.jsonl"
    if not path.exists():
        _write_jsonl(path, validation)
    return [
        [Turn(**t) for t in json.loads(line)["turns"]]
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def evaluate(
    *,
    settings: Settings,
    candidate_dir: Path,
    active: AdapterVersion | None,
    sets: dict[str, list[list[Turn]]],
    secrets: list[str],
) -> dict[str, dict[str, dict[str, Any]]]:
    """{set name: {model name: metrics}} for base, active (if any) and candidate."""
    from peft import PeftModel

    model, tokenizer = load_base(settings.resolved_model_dir, pick_device(settings.device))
    model = PeftModel.from_pretrained(model, str(candidate_dir), adapter_name="candidate")
    if active is not None:
        model.load_adapter(active.path, adapter_name="active")
    model.eval()
    probes = [c[:-1] for c in canary_examples(secrets, settings.system_prompt)]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for set_name, conversations in sets.items():
        results[set_name] = {}
        for name in ["base", *(["active"] if active else []), "candidate"]:
            with using(model, None if name == "base" else name):
                scores = score(
                    model,
                    tokenizer,
                    conversations,
                    max_len=settings.finetune_max_seq_len,
                    context_tokens=settings.context_tokens,
                    generations=settings.finetune_eval_generations,
                    max_new_tokens=settings.finetune_eval_max_new_tokens,
                    canaries=secrets,
                    canary_prompts=probes if name == "candidate" else (),
                )
            results[set_name][name] = {
                **scores.metrics(),
                "replies": scores.replies,
                "per_example": scores.per_example,
            }
    return results


def _segment_drift(db: DbEngine, settings: Settings, tenant_id: int) -> list[str]:
    """How the serving adapter does per segment in production, for the nightly report."""
    refresh_tenant(db, tenant_id, settings)
    with session_scope(db) as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        return [
            f.describe() for f in tenant_drift(session=session, tenant=tenant, settings=settings)
        ]


def run_once(
    *,
    db: DbEngine,
    settings: Settings,
    tenant_slug: str,
    force: bool = False,
    full: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
) -> RunOutcome:
    """`force`: train however few new examples there are. `full`: all history, not just the
    window since the last run (a retrain after an erasure)."""
    with session_scope(db) as session:
        tenant = get_tenant_by_slug(session=session, slug=tenant_slug)
        if tenant is None or tenant.id is None:
            raise ValueError(f"tenant {tenant_slug!r} not found")
        tenant_id = tenant.id
    with tenant_lock(settings, tenant_slug):
        run, resumed = _claim_run(db, tenant_id, settings, full)
        assert run.id is not None
        context = f"tenant={tenant_slug} run={run.id}"
        try:
            return _run(
                db, settings, tenant_slug, tenant_id, run, resumed, force, progress, context
            )
        except Exception as exc:
            log.exception("fine-tuning failed (%s)", context)
            _finish(db, run.id, TrainingRunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise


def _run(
    db: DbEngine,
    settings: Settings,
    slug: str,
    tenant_id: int,
    run: TrainingRun,
    resumed: bool,
    force: bool,
    progress: Callable[[int, int, float], None] | None,
    context: str,
) -> RunOutcome:
    assert run.id is not None and run.window_end is not None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(settings.resolved_model_dir)
    with session_scope(db) as session:
        dataset: Dataset = build_dataset(
            session=session,
            tenant_id=tenant_id,
            settings=settings,
            since=run.window_start,
            until=run.window_end,
            tokenizer=tokenizer,
        )
    card = dataset.card
    log.info("dataset (%s): %s", context, json.dumps(card))
    new = card["new_examples"]
    if new < settings.finetune_min_examples and not force:
        reason = f"{new} new examples, fewer than the {settings.finetune_min_examples} a run needs"
        _finish(db, run.id, TrainingRunStatus.SKIPPED, dataset_card=card, error=reason)
        return RunOutcome(run.id, "skipped", reason)
    if not dataset.train:
        reason = "no training examples at all"
        _finish(db, run.id, TrainingRunStatus.SKIPPED, dataset_card=card, error=reason)
        return RunOutcome(run.id, "skipped", reason)

    work = tenant_dir(settings, slug) / f"run-{run.id}"
    work.mkdir(parents=True, exist_ok=True)
    _write_jsonl(work / "train.jsonl", dataset.train)
    _write_jsonl(work / "validation.jsonl", dataset.validation)
    secrets = canaries(settings.finetune_seed, run.id)
    examples = [e.turns for e in dataset.train] + canary_examples(secrets, settings.system_prompt)
    config = train_config(settings)
    fingerprint = hashlib.sha256(
        (work / "train.jsonl").read_bytes() + json.dumps(secrets).encode()
    ).hexdigest()
    candidate_dir = work / "candidate"
    shutil.rmtree(candidate_dir, ignore_errors=True)
    result = train_lora(
        model_dir=settings.resolved_model_dir,
        examples=examples,
        out_dir=candidate_dir,
        work_dir=work,
        config=config,
        fingerprint=fingerprint,
        progress=progress,
    )
    log.info("trained (%s): %s", context, result)

    active = _active(db, tenant_id)
    if active is not None and active.tainted:
        active = None  # weights trained on erased data are no standard to meet: compare to base
    validation = [e.turns for e in dataset.validation]
    sets = {"validation": validation}
    regression = _regression_set(settings, slug, dataset.validation)
    if [[asdict(t) for t in c] for c in regression] != [[asdict(t) for t in c] for c in validation]:
        sets["regression"] = regression
    results = evaluate(
        settings=settings, candidate_dir=candidate_dir, active=active, sets=sets, secrets=secrets
    )
    reference = "active" if active else "base"
    decisions = {
        set_name: decide(
            models["candidate"]["per_example"],
            models[reference]["per_example"],
            tolerance=settings.finetune_gate_tolerance,
            reference_name=reference,
            canary_leaks=int(models["candidate"]["canary_leaks"]),
        )
        for set_name, models in results.items()
    }
    promote = all(d.promote for d in decisions.values())
    reasons = [f"{s}: {r}" for s, d in decisions.items() for r in d.reasons]
    metrics = {
        s: {
            m: {k: v for k, v in scores.items() if k not in ("replies", "per_example")}
            for m, scores in models.items()
        }
        for s, models in results.items()
    }
    name = f"{slug}-r{run.id}-{datetime.now().strftime('%Y%m%d%H%M%S')}"
    pairs = prompts_and_references(validation, settings.finetune_eval_generations)
    samples = [
        {
            "prompt": next((x.text for x in reversed(prompt) if x.role == "user"), ""),
            "reference": ref,
            "replies": {
                m: results["validation"][m]["replies"][i]
                for m in results["validation"]
                if i < len(results["validation"][m]["replies"])
            },
        }
        for i, (prompt, ref) in enumerate(pairs)
    ]
    drift = _segment_drift(db, settings, tenant_id)
    report_json, report_html = write_report(
        {
            "drift": drift,
            "title": f"Nightly run {run.id} for {slug}",
            "summary": f"{len(dataset.train)} training and {len(dataset.validation)} validation "
            f"examples; {result.steps} steps ({'resumed at ' + str(result.resumed_from) if result.resumed_from else 'from scratch'}); "
            f"candidate {name} against the {reference}.",
            "decision": {"verdict": "promote" if promote else "reject", "reasons": reasons},
            "models": metrics["validation"],
            "sets": metrics,
            "dataset_card": card,
            "training": asdict(result),
            "samples": samples,
        },
        work,
    )
    summary = {"metrics": metrics, "report": str(report_html), "adapter": name if promote else None}
    if not promote:
        log.warning("candidate rejected (%s): %s", context, "; ".join(reasons))
        _finish(
            db,
            run.id,
            TrainingRunStatus.FAILED,
            dataset_card=card,
            error="gate rejected the candidate: "
            + "; ".join(r for r in reasons if "FAIL" in r or "canary" in r),
            config={**run.config, **summary},
        )
        shutil.rmtree(candidate_dir, ignore_errors=True)
        return RunOutcome(run.id, "rejected", "; ".join(reasons), None, metrics, report_html)

    version = publish_candidate(
        db=db,
        settings=settings,
        tenant_id=tenant_id,
        tenant_slug=slug,
        name=name,
        source=candidate_dir,
        run_id=run.id,
        metrics=metrics["validation"]["candidate"],
        lineage=dataset.lineage(),
    )
    _finish(
        db, run.id, TrainingRunStatus.SUCCEEDED, dataset_card=card, config={**run.config, **summary}
    )
    for stale in (work / "checkpoint", candidate_dir):
        shutil.rmtree(stale, ignore_errors=True)
    pruned = prune_versions(
        db=db, settings=settings, tenant_id=tenant_id, keep=settings.finetune_keep_versions
    )
    log.info("published %s (%s); pruned %s", version.name, context, pruned or "nothing")
    return RunOutcome(run.id, "published", "; ".join(reasons), version.name, metrics, report_html)
