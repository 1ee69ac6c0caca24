"""Scores of one model (base, or base + one adapter) on conversations with real agent replies.

- loss / perplexity: mean cross-entropy over reply tokens only (token-weighted), the same
  tokens training puts loss on;
- ROUGE-L (F1, rouge-score) and BLEU (sacrebleu, corpus level) of greedy replies generated for
  the last customer turn of each conversation, against what the agent actually wrote;
- canary leaks: generated text containing a string that must never be emitted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from core.chat_format import IGNORE, Turn, encode, prompt_ids


@dataclass
class Scores:
    loss: float
    perplexity: float
    rouge_l: float
    bleu: float
    reply_chars: float
    canary_leaks: int
    replies: list[str] = field(default_factory=list)
    # per-example values, paired across models (same conversations, same order): the gate
    # compares models on these, not only on the means
    per_example: dict[str, list[float]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        return {
            "loss": round(self.loss, 4),
            "perplexity": round(self.perplexity, 3),
            "rouge_l": round(self.rouge_l, 4),
            "bleu": round(self.bleu, 3),
            "reply_chars": round(self.reply_chars, 1),
            "canary_leaks": self.canary_leaks,
        }


def reply_losses(
    model: Any, tokenizer: Any, conversations: Sequence[Sequence[Turn]], max_len: int
) -> list[tuple[float, int]]:
    """(mean loss over its reply tokens, number of them) per conversation (one at a time:
    no padding to get wrong)."""
    import torch

    found = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for turns in conversations:
            ids, labels = encode(tokenizer, turns, max_len)
            shifted = sum(label != IGNORE for label in labels[1:])
            if not shifted:
                continue
            out = model(
                input_ids=torch.tensor([ids], device=device),
                labels=torch.tensor([labels], device=device),
            )
            found.append((float(out.loss), shifted))
    return found


def prompts_and_references(
    conversations: Sequence[Sequence[Turn]], limit: int
) -> list[tuple[list[Turn], str]]:
    """Up to `limit` (context, real reply) pairs: every reply of the first conversation, then
    the next, round-robin over conversations so one long chat cannot fill the sample."""
    per_conversation = [
        [(list(turns[:i]), t.text) for i, t in enumerate(turns) if t.train and i > 0]
        for turns in conversations
    ]
    pairs: list[tuple[list[Turn], str]] = []
    depth = 0
    while len(pairs) < limit and any(depth < len(p) for p in per_conversation):
        pairs += [p[depth] for p in per_conversation if depth < len(p)][: limit - len(pairs)]
        depth += 1
    return pairs


def generate(
    model: Any, tokenizer: Any, prompt: Sequence[Turn], max_new_tokens: int, context_tokens: int
) -> str:
    """A greedy reply to the prompt as serving would send it: fitted so that prompt and reply
    stay within the serving context window."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor(
        [prompt_ids(tokenizer, prompt, context_tokens - max_new_tokens)], device=device
    )
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    text: str = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    return text.strip()


def rouge_l_each(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return [
        scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)
    ]


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    scores = rouge_l_each(predictions, references)
    return sum(scores) / len(scores) if scores else 0.0


def bleu_each(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    import sacrebleu

    return [
        float(sacrebleu.sentence_bleu(p, [r]).score)
        for p, r in zip(predictions, references, strict=True)
    ]


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def score(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[Turn]],
    *,
    max_len: int = 1024,
    context_tokens: int = 2048,
    generations: int = 8,
    max_new_tokens: int = 48,
    canaries: Sequence[str] = (),
    canary_prompts: Sequence[Sequence[Turn]] = (),
) -> Scores:
    """Loss over reply tokens of conversations fitted to ``max_len`` (as in training), and
    greedy replies to prompts fitted to ``context_tokens`` (as in serving)."""
    losses = reply_losses(model, tokenizer, conversations, max_len)
    count = sum(n for _, n in losses)
    loss = sum(value * n for value, n in losses) / count if count else float("nan")
    pairs = prompts_and_references(conversations, generations)
    replies = [generate(model, tokenizer, p, max_new_tokens, context_tokens) for p, _ in pairs]
    probes = [generate(model, tokenizer, p, max_new_tokens, context_tokens) for p in canary_prompts]
    leaks = sum(any(c.lower() in text.lower() for c in canaries) for text in replies + probes)
    references = [r for _, r in pairs]
    return Scores(
        loss=loss,
        perplexity=math.exp(loss) if loss == loss else float("nan"),
        rouge_l=rouge_l(replies, [r for _, r in pairs]),
        bleu=bleu(replies, [r for _, r in pairs]),
        reply_chars=sum(map(len, replies)) / len(replies) if replies else 0.0,
        canary_leaks=leaks,
        replies=replies,
        per_example={
            "loss": [value for value, _ in losses],
            "rouge_l": rouge_l_each(replies, references),
            "bleu": bleu_each(replies, references),
        },
    )


@contextmanager
def using(model: Any, adapter: str | None) -> Iterator[None]:
    """Score the base (adapter None) or one loaded adapter of a PeftModel."""
    if adapter is None:
        context = model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
        with context:
            yield
    else:
        model.set_adapter(adapter)
        yield
