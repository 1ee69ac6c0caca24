"""The model learning: `finetune run`, `privacy forget`, `eval run`, `eval grounding`.

The training packages import torch, transformers and presidio; they are imported inside the
commands, so the rest of the command line starts fast.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from core.crud.adapters import active_adapter, get_adapter_by_name
from core.crud.tenants import tenant_slugs
from core.db import session_scope
from core.errors import DomainError
from core.settings import Settings, get_settings
from supportloop.cli.terminal import (
    TenantOption,
    configure_logging,
    console,
    database,
    fail,
    failing_on,
)

finetune_app = typer.Typer(help="The nightly LoRA loop.")
privacy_app = typer.Typer(help="Erasure requests.")
eval_app = typer.Typer(help="Evaluate adapters on conversation files.")

OUTCOME_COLOUR = {"published": "green", "rejected": "yellow"}


@finetune_app.command("run")
def finetune_run(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant (default: all)")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Train even with fewer new examples than configured")
    ] = False,
    night: Annotated[
        str | None,
        typer.Option(
            help="The scheduled night (YYYY-MM-DD): each tenant's run is claimed once for it, "
            "however many workers schedule it"
        ),
    ] = None,
) -> None:
    """Run the loop once: dataset, training, evaluation gate, publish to the registry."""
    from analytics import refresh_all_tenants
    from finetune_loop.run import RunLockedError, run_once

    configure_logging()
    settings = get_settings()
    db = database(settings)
    refresh_all_tenants(db, settings)  # the report quotes production drift as it stands
    with session_scope(db) as session:
        slugs = [tenant] if tenant else tenant_slugs(session=session)
    failed = False
    for slug in slugs:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"{slug}: training", total=None)

            def advance(
                step: int, total: int, loss: float, task: Any = task, slug: str = slug
            ) -> None:
                progress.update(
                    task,
                    completed=step,
                    total=total,
                    description=f"{slug}: training, loss {loss:.3f}",
                )

            try:
                outcome = run_once(
                    db=db,
                    settings=settings,
                    tenant_slug=slug,
                    force=force,
                    progress=advance,
                    night=night,
                )
            except (RunLockedError, DomainError) as exc:
                console.print(f"[red]{slug}: {exc}")
                failed = True
                continue
        colour = OUTCOME_COLOUR.get(outcome.status, "white")
        console.print(
            f"[{colour}]{slug}: {outcome.status}[/] (run {outcome.run_id}): {outcome.reason}"
        )
        if outcome.adapter:
            console.print(f"  adapter {outcome.adapter} is in the registry; serving activates it")
        if outcome.report:
            console.print(f"  report: {outcome.report}")
    if failed:
        raise typer.Exit(1)


@privacy_app.command("forget")
def privacy_forget(
    tenant: TenantOption,
    customer: Annotated[
        int | None, typer.Option("--customer", help="Our customer id (widget customers)")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Everyone with this email, from any source")
    ] = None,
    external_id: Annotated[
        str | None,
        typer.Option("--external-id", help="The person's id in a CRM: PROVIDER:ID"),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who asks, for the audit (default: OS user)")
    ] = None,
) -> None:
    """Delete a person's conversations (widget, CRM or imported) with every copy of them: raw
    webhook bodies, training files, lineage; taint every adapter trained on them and retrain
    without them. Tombstones keep replays and backfills from bringing them back."""
    import getpass

    from finetune_loop.privacy import ErasureRequest, forget
    from finetune_loop.run import RunLockedError

    configure_logging()
    settings = get_settings()
    db = database(settings)
    try:
        with failing_on(DomainError, RunLockedError, code=1):
            request = ErasureRequest(customer_id=customer, email=email, external_id=external_id)
            report = forget(
                db=db,
                settings=settings,
                tenant_slug=tenant,
                request=request,
                actor=f"cli:{by or getpass.getuser()}",
            )
    finally:
        db.dispose()
    console.print(
        f"{report.customers} matching people; deleted {report.conversations_deleted} "
        f"conversations ({report.messages_deleted} messages); {report.raw_bodies_wiped} raw "
        f"webhook bodies wiped; {report.training_files_rewritten} training files rewritten; "
        f"tainted: {', '.join(report.tainted_versions) or 'none'}"
    )
    if report.retrain is not None:
        console.print(f"retrain: {report.retrain.status} ({report.retrain.reason})")


def _models_to_score(settings: Settings, adapter: str) -> dict[str, Path | None]:
    """Report name -> adapter directory: the base model, the tenant's active version (when it
    is another one) and the named version."""
    with session_scope(database(settings)) as session:
        version = get_adapter_by_name(session=session, name=adapter)
        if version is None:
            fail(f"no adapter version named {adapter!r}")
        active = active_adapter(session=session, tenant_id=version.tenant_id)
        models: dict[str, Path | None] = {"base": None}
        if active is not None and active.id != version.id:
            models[f"active ({active.name})"] = Path(active.path)
        is_active = active is not None and active.id == version.id
        models[f"{adapter} (active)" if is_active else adapter] = Path(version.path)
        return models


@eval_app.command("run")
def eval_run(
    adapter: Annotated[str, typer.Option("--adapter", help="Registered adapter version name")],
    dataset: Annotated[
        Path, typer.Option("--dataset", exists=True, dir_okay=False, help="Conversation JSONL")
    ],
    limit: Annotated[int, typer.Option(help="Conversations read from the file")] = 50,
    generations: Annotated[int, typer.Option(help="Replies generated per model")] = 16,
    out: Annotated[Path | None, typer.Option(help="Report directory")] = None,
) -> None:
    """Score an adapter, its tenant's active adapter and the base model on a conversation file
    (loss/perplexity on agent turns, ROUGE-L, BLEU, reply length, refusal rate); writes
    report.json and report.html."""
    from eval import DatasetError, evaluate_file

    settings = get_settings()
    models = _models_to_score(settings, adapter)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = out or settings.var_dir / "eval" / f"{adapter}-{stamp}"
    with (
        console.status(f"scoring {len(models)} models on {dataset.name}…"),
        failing_on(DatasetError),
    ):
        result = evaluate_file(
            settings=settings,
            models=models,
            dataset=dataset,
            out_dir=out_dir,
            limit=limit,
            generations=generations,
        )
    for name, metrics in result.models.items():
        console.print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    console.print(f"report: {result.html_path} ({result.json_path.name})")


@eval_app.command("grounding")
def eval_grounding(
    tenant: TenantOption,
    questions: Annotated[
        Path, typer.Option("--questions", exists=True, dir_okay=False, help="Questions JSONL")
    ],
    out: Annotated[Path | None, typer.Option(help="Report directory")] = None,
) -> None:
    """Ask every question as a customer would (retrieval, the tenant's active adapter, the
    engine) and score retrieval, answers, refusals and citations: results.jsonl,
    summary.json, report.html."""
    import asyncio

    from eval import DatasetError
    from supportloop.grounding_eval import evaluate_grounding

    settings = get_settings()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = out or settings.var_dir / "eval" / f"grounding-{tenant}-{stamp}"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with failing_on(DatasetError, DomainError), Progress(*columns, console=console) as progress:
        task = progress.add_task("questions", total=None)
        summary = asyncio.run(
            evaluate_grounding(
                db=database(settings),
                settings=settings,
                tenant_slug=tenant,
                questions_path=questions,
                out_dir=out_dir,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        )
    for key, value in summary.items():
        console.print(f"{key}: {value}")
    console.print(f"report: {out_dir / 'report.html'} (results.jsonl, summary.json)")
