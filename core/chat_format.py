"""A conversation as the model sees it, for training and for evaluation alike.

Turns -> token ids and labels with the model's own chat template; loss on replies only.

Each turn is rendered as the difference between the template applied to the turns up to it
and to the turns before it, so the ids are exactly what serving sends. For an assistant turn
the header (`<|im_start|>assistant\\n`) is context, and the reply with its end-of-turn token is
the target; system and customer turns are never targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE = -100


@dataclass
class Turn:
    role: str  # "system" | "user" | "assistant"
    text: str
    train: bool = False  # loss on this turn (assistant turns only)


def add_turn(turns: list[Turn], role: str, text: str, *, train: bool = False) -> None:
    """Append a message as a turn; consecutive messages of one speaker become one turn (the
    chat template alternates speakers). ``train`` counts only when a new turn starts."""
    if turns and turns[-1].role == role:
        turns[-1].text += "\n" + text
    else:
        turns.append(Turn(role, text, train=train))


def has_target(turns: Sequence[Turn]) -> bool:
    """A customer turn and at least one reply to learn or score."""
    return any(t.train for t in turns) and any(t.role == "user" for t in turns)


def _render(tokenizer: Any, turns: Sequence[Turn], generation_prompt: bool = False) -> str:
    rendered: str = tokenizer.apply_chat_template(
        [{"role": t.role, "content": t.text} for t in turns],
        tokenize=False,
        add_generation_prompt=generation_prompt,
    )
    return rendered


def encode(tokenizer: Any, turns: Sequence[Turn], max_len: int) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    done = ""
    for i, turn in enumerate(turns):
        full = _render(tokenizer, turns[: i + 1])
        if turn.role == "assistant":
            header_end = len(_render(tokenizer, turns[:i], generation_prompt=True))
        else:
            header_end = len(full)
        context, target = full[len(done) : header_end], full[header_end:]
        for text, trained in ((context, False), (target, turn.train)):
            if not text:
                continue
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            labels += piece if trained else [IGNORE] * len(piece)
        done = full
    # Over-long conversations keep their end: the last replies are the ones being taught.
    return ids[-max_len:], labels[-max_len:]
