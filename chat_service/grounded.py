"""A reply's prompt, grounded when the tenant has documents: the one function live replies,
assist-mode drafts and `supportloop eval grounding` all build their prompts with, so the
evaluation measures exactly what customers get."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.chat_format import M, Turn, conversation_turns, customer_questions
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

    def finish(self, reply: str, *, min_overlap: float) -> Answer | None:
        """What the customer gets for the model's reply (None: nothing to ground in, the
        reply goes as it is)."""
        if self.answer is not None or self.grounding is None:
            return self.answer
        return review(reply, self.grounding, min_overlap=min_overlap)


def plan_prompt(
    knowledge: KnowledgeBase | None, system_prompt: str, tenant_id: int, history: Sequence[M]
) -> PromptPlan:
    plain = conversation_turns(system_prompt, history)[0]
    if knowledge is None:
        return PromptPlan(plain)
    grounding = knowledge.ground_if_documented(tenant_id, customer_questions(history))
    if grounding is None:
        return PromptPlan(plain)
    if not grounding.answerable:
        return PromptPlan(plain, grounding, refusal(grounding))
    if grounding.pressed:
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
    text = ""
    if plan.answer is None:
        pieces = [p async for p in engine.stream_chat(plan.prompt, adapter=adapter, params=params)]
        text = "".join(pieces).strip()
    grounded = plan.finish(text, min_overlap=min_overlap)
    return (grounded.text if grounded else text), grounded
