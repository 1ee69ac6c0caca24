"""A reply's prompt, grounded when the tenant has documents: the one function live replies,
assist-mode drafts and `supportloop eval grounding` all build their prompts with, so the
evaluation measures exactly what customers get."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.chat_format import M, Turn, conversation_turns
from core.models import Role
from engines import Engine, SamplingParams
from knowledge import (
    Answer,
    Grounding,
    KnowledgeBase,
    grounded_prompt,
    policy_handoff,
    refusal,
    review,
)


@dataclass(frozen=True)
class PromptPlan:
    prompt: list[Turn]
    grounding: Grounding | None = None  # None: no documents to ground in
    answer: Answer | None = None  # decided without the model: the documents are silent


def plan_prompt(
    knowledge: KnowledgeBase | None, system_prompt: str, tenant_id: int, history: Sequence[M]
) -> PromptPlan:
    if knowledge is None or not knowledge.has_documents(tenant_id):
        return PromptPlan(conversation_turns(system_prompt, history)[0])
    asked = [m.text for m in history if m.role == Role.CUSTOMER and not m.internal_note]
    grounding = knowledge.ground(tenant_id, asked)
    if not grounding.answerable:
        return PromptPlan(
            conversation_turns(system_prompt, history)[0], grounding, refusal(grounding)
        )
    if grounding.pressed:
        plain = conversation_turns(system_prompt, history)[0]
        return PromptPlan(plain, grounding, policy_handoff(grounding))
    head = grounded_prompt(system_prompt, grounding, knowledge.config.context_tokens)
    return PromptPlan(conversation_turns(head, history)[0], grounding)


async def answer(
    engine: Engine,
    plan: PromptPlan,
    *,
    adapter: str | None,
    params: SamplingParams,
    min_overlap: float,
) -> tuple[str, Answer | None]:
    """The reply a customer would read (not streamed), and its grounded answer if any."""
    if plan.answer is not None:
        return plan.answer.text, plan.answer
    pieces = [p async for p in engine.stream_chat(plan.prompt, adapter=adapter, params=params)]
    text = "".join(pieces).strip()
    if plan.grounding is None:
        return text, None
    grounded = review(text, plan.grounding, min_overlap=min_overlap)
    return grounded.text, grounded
