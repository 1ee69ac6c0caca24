"""`supportloop eval grounding`: every question through the path a live chat takes - the
tenant's documents, its active adapter, the configured engine, the same prompt builder and
answer check (chat_service.grounded) - then eval's metrics over what came out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select

from chat_service.grounded import answer, plan_prompt
from core.crud.adapters import active_adapter
from core.crud.tenants import require_tenant
from core.db import session_scope
from core.models import KnowledgeDocument
from core.models.enums import ROLE_ALIASES
from core.models.knowledge import SUPERSEDED
from core.settings import Settings
from engines import Engine, SamplingParams, build_engine
from eval import Question, read_questions, summarise, write_grounding_report
from knowledge import KnowledgeBase


@dataclass(frozen=True)
class Said:
    role: str
    text: str
    internal_note: bool = False


def conversation(question: Question) -> list[Said]:
    """The question's earlier turns (user = customer, assistant = the bot), then the question."""
    turns = [Said(ROLE_ALIASES.get(t["role"], t["role"]), t["text"]) for t in question.history]
    return [*turns, Said(ROLE_ALIASES["customer"], question.question)]


async def evaluate_grounding(
    *,
    db: DbEngine,
    settings: Settings,
    tenant_slug: str,
    questions_path: Path,
    out_dir: Path,
    engine: Engine | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Runs the questions and writes results.jsonl, summary.json and report.html. ``engine``:
    an already started engine to use (tests); otherwise the configured one is started."""
    questions = read_questions(questions_path)
    with session_scope(db) as session:
        tenant = require_tenant(session=session, slug=tenant_slug)
        tenant_id = tenant.id
        adapter = active_adapter(session=session, tenant_id=tenant.id)  # type: ignore[arg-type]
        adapter_name, adapter_path = (adapter.name, Path(adapter.path)) if adapter else (None, None)
        superseded = set(
            session.exec(
                select(KnowledgeDocument.doc_id).where(
                    KnowledgeDocument.tenant_id == tenant_id,
                    KnowledgeDocument.status == SUPERSEDED,
                )
            )
        )
    assert tenant_id is not None
    knowledge = KnowledgeBase(db, settings.knowledge)
    own = engine is None
    serving = engine or build_engine(settings)
    if own:
        await serving.start()
    params = SamplingParams(max_tokens=settings.max_new_tokens, temperature=0.0, seed=0)
    results = []
    try:
        if adapter_name and adapter_path:
            await serving.ensure_adapter(adapter_name, adapter_path)
        for done, question in enumerate(questions, start=1):
            plan = plan_prompt(knowledge, settings.system_prompt, tenant_id, conversation(question))
            text, grounded = await answer(
                serving,
                plan,
                adapter=adapter_name,
                params=params,
                min_overlap=settings.knowledge.min_overlap,
            )
            sources = [s.shown() for s in grounded.sources] if grounded else []
            results.append(
                {
                    "id": question.id,
                    "retrieved": plan.grounding.retrieved if plan.grounding else [],
                    "answer": text,
                    "citations": [s["doc_id"] for s in sources],
                    "sources_shown": [
                        {k: s[k] for k in ("doc_id", "title", "excerpt")} for s in sources
                    ],
                    "refused": bool(grounded and grounded.refused),
                }
            )
            if progress:
                progress(done, len(questions))
    finally:
        if own:
            await serving.close()
    summary = summarise(questions, results, superseded=superseded)
    summary["adapter"] = adapter_name or "base model"
    write_grounding_report(out_dir, questions, results, summary)
    return summary
