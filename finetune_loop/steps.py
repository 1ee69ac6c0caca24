"""The steps of a nightly run, in the order finetune_loop/run.py calls them.

Each step takes what the steps before it produced and returns what the next one needs, so each
can be run (and tested) alone: build the dataset, train a candidate, score it against what
serves now, let the gate decide, write the report, then publish or reject.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import eval as evaluation
from analytics import tenant_drift
from core.chat_format import Turn, articles_in
from core.db import read_scope, session_scope
from core.models import AdapterVersion, Tenant, TrainingRunStatus
from core.settings import Settings
from finetune_loop import distributed
from finetune_loop.canaries import canaries, canary_examples, canary_probes
from finetune_loop.dataset import Dataset, Example, build_dataset, example_to_json
from finetune_loop.gate import decide
from finetune_loop.publish import prune_versions, publish_candidate
from finetune_loop.runs import NightlyRun, RunOutcome, RunResult, tenant_dir, training_config
from finetune_loop.trainer import TrainResult
from knowledge import KnowledgeBase, faithful, grounded_prompt

log = logging.getLogger(__name__)

# {set name: {model name ("base", "active", "candidate"): metrics, replies, per-example values}}
Scores = dict[str, dict[str, dict[str, Any]]]
Progress = Callable[[int, int, float], None]


@dataclass
class Trained:
    name: str  # the version name it will have in the registry (never reused)
    candidate: Path
    result: TrainResult
    secrets: list[str]  # canaries planted in its training data


@dataclass
class Scored:
    scores: Scores
    reference: str  # what the candidate must match: "active", or "base" when nothing serves


@dataclass
class Verdict:
    promote: bool
    reasons: list[str]
    metrics: dict[str, dict[str, dict[str, Any]]]  # scores without replies and per-example


# -- 1. dataset ------------------------------------------------------------------------------


def build(run: NightlyRun) -> Dataset:
    """The run's window of conversations as a clean training set (finetune_loop/dataset.py)."""
    from transformers import AutoTokenizer

    assert run.row.window_end is not None
    tokenizer = AutoTokenizer.from_pretrained(run.settings.resolved_model_dir)
    grounder = _grounder(run)
    # One snapshot that never takes the write lock: chats go on while a large tenant's
    # history is read.
    with read_scope(run.db) as session:
        dataset = build_dataset(
            session=session,
            tenant_id=run.tenant_id,
            settings=run.settings,
            since=run.row.window_start,
            until=run.row.window_end,
            tokenizer=tokenizer,
            grounder=grounder,
        )
    log.info("dataset (%s): %s", run.context, json.dumps(dataset.card))
    return dataset


def _grounder(run: NightlyRun) -> Callable[[list[str]], str] | None:
    """The system prompt serving would build for these customer turns (chat_service.grounded
    does the same for live replies): articles in it when the help center answers them."""
    knowledge = KnowledgeBase(run.db, run.settings.knowledge)
    if not knowledge.has_documents(run.tenant_id):
        return None
    base, budget = run.settings.system_prompt, run.settings.knowledge.context_tokens
    ground = knowledge.snapshot(run.tenant_id)  # one index for the whole dataset

    return lambda asked: grounded_prompt(base, ground(asked), budget)


def skip_reason(settings: Settings, dataset: Dataset, force: bool) -> str | None:
    new = dataset.card["new_examples"]
    if new < settings.finetune_min_examples and not force:
        return f"{new} new examples, fewer than the {settings.finetune_min_examples} a run needs"
    if not dataset.train:
        return "no training examples at all"
    return None


def skip(run: NightlyRun, dataset: Dataset, reason: str) -> RunOutcome:
    run.finish(TrainingRunStatus.SKIPPED, dataset_card=dataset.card, error=reason)
    return RunOutcome(run.id, RunResult.SKIPPED, reason)


# -- 2. train --------------------------------------------------------------------------------


def _write_jsonl(path: Path, examples: list[Example]) -> None:
    with path.open("w") as handle:
        for example in examples:
            handle.write(json.dumps(example_to_json(example)) + "\n")


def train(run: NightlyRun, dataset: Dataset, progress: Progress | None = None) -> Trained:
    """A LoRA candidate on the training split plus this run's canaries. A killed run resumes
    from its checkpoint: the fingerprint ties the checkpoint to this very data."""
    run.work.mkdir(parents=True, exist_ok=True)
    _write_jsonl(run.work / "train.jsonl", dataset.train)
    _write_jsonl(run.work / "validation.jsonl", dataset.validation)
    config = training_config(run.settings)
    secrets = canaries(config.seed, run.id)
    examples = [e.turns for e in dataset.train]
    examples += canary_examples(secrets, run.settings.system_prompt)
    fingerprint = hashlib.sha256(
        (run.work / "train.jsonl").read_bytes() + json.dumps(secrets).encode()
    ).hexdigest()
    candidate = run.work / "candidate"
    shutil.rmtree(candidate, ignore_errors=True)
    result = distributed.train(
        model_dir=run.settings.resolved_model_dir,
        examples=examples,
        out_dir=candidate,
        work_dir=run.work,
        config=config,
        fingerprint=fingerprint,
        device=run.settings.device,
        progress=progress,
    )
    log.info("trained (%s): %s", run.context, result)
    name = f"{run.slug}-r{run.id}-{datetime.now().strftime('%Y%m%d%H%M%S')}"
    return Trained(name, candidate, result, secrets)


# -- 3. score --------------------------------------------------------------------------------


def _serving(run: NightlyRun) -> AdapterVersion | None:
    """The version the candidate must beat; weights trained on erased data are no standard to
    meet, so a tainted one counts as nothing (the base model is the reference)."""
    with session_scope(run.db) as session:
        tenant = session.get(Tenant, run.tenant_id)
        if tenant is None or tenant.active_adapter_id is None:
            return None
        version = session.get(AdapterVersion, tenant.active_adapter_id)
        if version is None or version.tainted:
            return None
        session.expunge(version)
        return version


def _regression_set(run: NightlyRun, validation: list[Example]) -> list[list[Turn]]:
    """The tenant's fixed regression set: frozen from the first run's validation split."""
    path = tenant_dir(run.settings, run.slug) / "regression.jsonl"
    if not path.exists():
        _write_jsonl(path, validation)
    return [
        [Turn(**t) for t in json.loads(line)["turns"]]
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def score(run: NightlyRun, dataset: Dataset, trained: Trained) -> Scored:
    """Base model, serving version (if any) and candidate on the validation split and on the
    regression set (when it is not the very same conversations)."""
    active = _serving(run)
    validation = [e.turns for e in dataset.validation]
    sets = {"validation": validation}
    regression = _regression_set(run, dataset.validation)
    if [[asdict(t) for t in c] for c in regression] != [[asdict(t) for t in c] for c in validation]:
        sets["regression"] = regression
    scores = score_models(
        settings=run.settings,
        candidate_dir=trained.candidate,
        active=active,
        sets=sets,
        secrets=trained.secrets,
    )
    return Scored(scores, "active" if active else "base")


def score_models(
    *,
    settings: Settings,
    candidate_dir: Path,
    active: AdapterVersion | None,
    sets: dict[str, list[list[Turn]]],
    secrets: list[str],
) -> Scores:
    from peft import PeftModel

    from engines.base_model import load_base, pick_device

    model, tokenizer = load_base(settings.resolved_model_dir, pick_device(settings.device))
    model = PeftModel.from_pretrained(model, str(candidate_dir), adapter_name="candidate")
    if active is not None:
        model.load_adapter(active.path, adapter_name="active")
    model.eval()
    results: Scores = {}
    for set_name, conversations in sets.items():
        results[set_name] = {}
        for name in ["base", *(["active"] if active else []), "candidate"]:
            with evaluation.using(model, None if name == "base" else name):
                scores = evaluation.score(
                    model,
                    tokenizer,
                    conversations,
                    max_len=settings.training.max_seq_len,
                    context_tokens=settings.context_tokens,
                    generations=settings.finetune_eval_generations,
                    max_new_tokens=settings.finetune_eval_max_new_tokens,
                    canaries=secrets,
                    canary_prompts=(
                        canary_probes(secrets, settings.system_prompt)
                        if name == "candidate"
                        else ()
                    ),
                )
            grounded = _grounded(settings, conversations, scores.replies)
            results[set_name][name] = {
                **scores.metrics(),
                **({"grounded": sum(grounded) / len(grounded)} if grounded else {}),
                "replies": scores.replies,
                "per_example": {**scores.per_example, "grounded": grounded},
            }
    return results


def _grounded(
    settings: Settings, conversations: list[list[Turn]], replies: list[str]
) -> list[float]:
    """1.0 for each generated reply to a grounded prompt that passes serving's answer check
    (its figures and most of its words are in the articles it was given), else 0.0; replies
    to prompts without articles are not counted."""
    pairs = evaluation.prompts_and_references(conversations, len(replies))
    values = []
    for (prompt, _), reply in zip(pairs, replies, strict=True):
        articles = articles_in(prompt[0].text) if prompt and prompt[0].role == "system" else ""
        if articles:
            ok = faithful(reply, articles, min_overlap=settings.knowledge.min_overlap)
            values.append(1.0 if ok else 0.0)
    return values


# -- 4. gate ---------------------------------------------------------------------------------


def gate(settings: Settings, scored: Scored) -> Verdict:
    """Promote only if the candidate is no worse than the reference on every set
    (finetune_loop/gate.py) and repeats no canary."""
    decisions = {
        set_name: decide(
            models["candidate"]["per_example"],
            models[scored.reference]["per_example"],
            tolerance=settings.finetune_gate_tolerance,
            reference_name=scored.reference,
            canary_leaks=int(models["candidate"]["canary_leaks"]),
        )
        for set_name, models in scored.scores.items()
    }
    metrics = {
        set_name: {
            model: {k: v for k, v in values.items() if k not in ("replies", "per_example")}
            for model, values in models.items()
        }
        for set_name, models in scored.scores.items()
    }
    return Verdict(
        promote=all(d.promote for d in decisions.values()),
        reasons=[f"{s}: {r}" for s, d in decisions.items() for r in d.reasons],
        metrics=metrics,
    )


# -- 5. report -------------------------------------------------------------------------------


def _samples(validation: list[list[Turn]], scored: Scored, limit: int) -> list[dict[str, Any]]:
    replies = {m: v["replies"] for m, v in scored.scores["validation"].items()}
    return [
        {
            "prompt": next((x.text for x in reversed(prompt) if x.role == "user"), ""),
            "reference": reference,
            "replies": {m: r[i] for m, r in replies.items() if i < len(r)},
        }
        for i, (prompt, reference) in enumerate(
            evaluation.prompts_and_references(validation, limit)
        )
    ]


def _production_drift(run: NightlyRun) -> list[str]:
    """How the serving version does per segment in production, as the rollups stand (they
    are refreshed by their own loop, never here)."""
    with session_scope(run.db) as session:
        tenant = session.get(Tenant, run.tenant_id)
        assert tenant is not None
        flags = tenant_drift(session=session, tenant=tenant, settings=run.settings)
        return [flag.describe() for flag in flags]


def report(
    run: NightlyRun, dataset: Dataset, trained: Trained, scored: Scored, verdict: Verdict
) -> Path:
    """report.json and report.html (with plots) in the run's directory; returns the page."""
    result = trained.result
    how = f"resumed at {result.resumed_from}" if result.resumed_from else "from scratch"
    validation = [e.turns for e in dataset.validation]
    _, html = evaluation.write_report(
        {
            "drift": _production_drift(run),
            "title": f"Nightly run {run.id} for {run.slug}",
            "summary": f"{len(dataset.train)} training and {len(dataset.validation)} validation "
            f"examples; {result.steps} steps ({how}); "
            f"candidate {trained.name} against the {scored.reference}.",
            "decision": {
                "verdict": "promote" if verdict.promote else "reject",
                "reasons": verdict.reasons,
            },
            "models": verdict.metrics["validation"],
            "sets": verdict.metrics,
            "dataset_card": dataset.card,
            "training": asdict(result),
            "samples": _samples(validation, scored, run.settings.finetune_eval_generations),
        },
        run.work,
    )
    return html


# -- 6. publish or reject --------------------------------------------------------------------


def _summary(run: NightlyRun, verdict: Verdict, page: Path, adapter: str | None) -> dict[str, Any]:
    """What the run row keeps besides its dataset card: the configuration and the results."""
    return {**run.row.config, "metrics": verdict.metrics, "report": str(page), "adapter": adapter}


def reject(
    run: NightlyRun, dataset: Dataset, trained: Trained, verdict: Verdict, page: Path
) -> RunOutcome:
    log.warning("candidate rejected (%s): %s", run.context, "; ".join(verdict.reasons))
    failed = [r for r in verdict.reasons if "FAIL" in r or "canary" in r]
    run.finish(
        TrainingRunStatus.REJECTED,
        dataset_card=dataset.card,
        error="gate rejected the candidate: " + "; ".join(failed),
        config=_summary(run, verdict, page, None),
    )
    shutil.rmtree(trained.candidate, ignore_errors=True)
    reasons = "; ".join(verdict.reasons)
    return RunOutcome(run.id, RunResult.REJECTED, reasons, None, verdict.metrics, page)


def publish(
    run: NightlyRun, dataset: Dataset, trained: Trained, verdict: Verdict, page: Path
) -> RunOutcome:
    """Into the registry as `approved` (serving activates it), then old versions pruned."""
    version = publish_candidate(
        db=run.db,
        settings=run.settings,
        tenant_id=run.tenant_id,
        tenant_slug=run.slug,
        name=trained.name,
        source=trained.candidate,
        run_id=run.id,
        metrics=verdict.metrics["validation"]["candidate"],
        lineage=dataset.lineage(),
    )
    summary = _summary(run, verdict, page, version.name)
    run.finish(TrainingRunStatus.SUCCEEDED, dataset_card=dataset.card, config=summary)
    for stale in (run.work / "checkpoint", trained.candidate):
        shutil.rmtree(stale, ignore_errors=True)
    keep = run.settings.finetune_keep_versions
    pruned = prune_versions(db=run.db, settings=run.settings, tenant_id=run.tenant_id, keep=keep)
    log.info("published %s (%s); pruned %s", version.name, run.context, pruned or "nothing")
    reasons = "; ".join(verdict.reasons)
    return RunOutcome(run.id, RunResult.PUBLISHED, reasons, version.name, verdict.metrics, page)
