"""Turning a stored conversation into the chat turns the model sees."""

from __future__ import annotations

from collections.abc import Sequence

from core.models import Message, Role
from engines import ChatTurn

_MODEL_ROLE = {Role.CUSTOMER: "user", Role.AGENT: "assistant", Role.BOT: "assistant"}


def build_prompt(system_prompt: str, history: Sequence[Message]) -> list[ChatTurn]:
    """System prompt, then the visible history; agent and bot turns both speak as the assistant
    so the model continues in the voice customers already heard. Internal notes never enter."""
    turns = [ChatTurn("system", system_prompt)]
    for message in history:
        role = _MODEL_ROLE.get(Role(message.role))
        if role is None or message.internal_note:
            continue
        turns.append(ChatTurn(role, message.text))  # type: ignore[arg-type]
    return turns
