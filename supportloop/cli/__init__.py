"""`supportloop`: the command line, one module per area, each calling the packages' own
functions (no SQL here). This module only assembles them."""

from __future__ import annotations

import typer

from supportloop.cli.accounts import agent_app, tenant_app
from supportloop.cli.adapters import adapters_app
from supportloop.cli.ingestion import connectors_app, import_conversations
from supportloop.cli.knowledge import knowledge_app
from supportloop.cli.learning import eval_app, finetune_app, privacy_app
from supportloop.cli.service import db_app, model_app, serve, vllm_app, worker

app = typer.Typer(help="SupportLoop: a support chatbot that learns from its conversations.")
app.command()(serve)
app.command()(worker)
app.command("import")(import_conversations)
for group, name in (
    (finetune_app, "finetune"),
    (privacy_app, "privacy"),
    (eval_app, "eval"),
    (connectors_app, "connectors"),
    (knowledge_app, "knowledge"),
    (vllm_app, "vllm"),
    (adapters_app, "adapters"),
    (model_app, "model"),
    (tenant_app, "tenant"),
    (agent_app, "agent"),
    (db_app, "db"),
):
    app.add_typer(group, name=name)

__all__ = ["app"]
