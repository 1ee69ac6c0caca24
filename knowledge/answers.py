"""From a grounding to what the customer reads: the prompt a grounded reply is generated
from, and the check every generated reply passes before it is sent.

The check is what makes "never an invented answer" hold with a small model. A reply may cite
only the articles it was given, every figure in it - a price, a time, a count, a
percentage - must appear in those articles, and most of its words must too (`min_overlap`):
a small model that drifts off the articles ("we also serve craft beers") fails the check. A reply that fails is not sent as written: the
customer gets the best-matching sentences of the top article instead, quoted and cited.
When the documents do not answer the question at all, no model runs: the bot says it does not
know and offers a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.chat_format import grounded_system_prompt
from knowledge.grounding import Grounding, Source
from knowledge.index import words

REFUSAL = (
    "I'm sorry, I couldn't find that in our help center, and I don't want to guess. "
    "Would you like me to connect you with a person from our team?"
)
QUOTE_INTRO = "Here's what our help center says"
CONTEXT_CHARS_PER_TOKEN = 4  # a safe over-estimate for English; the exact fit is chat_format's
_FIGURE = re.compile(r"\d+(?:[.,:]\d+)*")
_CITATION = re.compile(r"\s*\[([A-Za-z0-9][A-Za-z0-9._-]{0,199})\]")


@dataclass
class Answer:
    text: str
    sources: list[Source] = field(default_factory=list)  # cited, shown under the reply
    refused: bool = False
    quoted: bool = False  # the model's reply failed the check; the article was quoted instead
    reason: str = ""

    def grounding_record(self, grounding: Grounding) -> dict[str, Any]:
        """What is stored with the message (and shown by the widget and the console)."""
        return {
            "sources": [s.shown() for s in self.sources],
            "refused": self.refused,
            "quoted": self.quoted,
            "reason": self.reason,
            "query": grounding.query,
            "retrieved": grounding.retrieved[:5],
            "support": round(grounding.support, 4),
        }


def grounded_prompt(base: str, grounding: Grounding, context_tokens: int) -> str:
    """The system prompt with as many of the grounding's excerpts as the budget allows; the
    plain one when the documents do not answer (serving declines before the model runs then,
    and training learns the agent's reply without articles)."""
    if not grounding.answerable:
        return base
    budget = context_tokens * CONTEXT_CHARS_PER_TOKEN
    articles: list[tuple[str, str]] = []
    for doc_id, text in grounding.context:
        if articles and budget - len(text) < 0:
            break
        articles.append((doc_id, text[:budget]))
        budget -= len(text)
    return grounded_system_prompt(base, articles)


BEYOND_POLICY = (
    "I can't promise anything beyond what our policy says. "
    "Would you like me to connect you with a person from our team?"
)


def policy_handoff(grounding: Grounding) -> Answer:
    """For a customer pressing for a promise or an exception: the policy as written, and a
    person (counted as a handoff); the model does not run, so it cannot promise anything."""
    return Answer(
        f"{quote(grounding)}\n\n{BEYOND_POLICY}",
        list(grounding.sources),
        refused=True,
        reason="asks for a promise or an exception",
    )


def refusal(grounding: Grounding) -> Answer:
    return Answer(REFUSAL, refused=True, reason=grounding.reason or "not answerable")


def _figures(text: str) -> set[str]:
    return {m.group(0).replace(",", "") for m in _FIGURE.finditer(text)}


def unsupported_figures(reply: str, articles: str) -> set[str]:
    return _figures(reply) - _figures(articles)


def overlap(reply: str, articles: str) -> float:
    """Share of the reply's content words that the articles contain."""
    said = words(reply)
    if not said:
        return 1.0
    known = set(words(articles))
    return sum(word in known for word in said) / len(said)


def faithful(reply: str, articles: str, *, min_overlap: float) -> bool:
    """The answer check without citations: what the nightly gate measures on replies to
    grounded prompts."""
    return not unsupported_figures(reply, articles) and overlap(reply, articles) >= min_overlap


def _articles(grounding: Grounding) -> str:
    return " ".join(
        [*(text for _, text in grounding.context), *(s.excerpt for s in grounding.sources)]
    )


def quote(grounding: Grounding) -> str:
    top = grounding.sources[0]
    return f"{QUOTE_INTRO} ({top.title}): {top.excerpt}"


def review(reply: str, grounding: Grounding, *, min_overlap: float = 0.75) -> Answer:
    """The answer to send for a model's reply to a grounded prompt."""
    known = {s.doc_id for s in grounding.sources} | {doc_id for doc_id, _ in grounding.context}
    cited = [m.group(1) for m in _CITATION.finditer(reply)]
    invalid = sorted({c for c in cited if c not in known})
    text = _CITATION.sub("", reply).strip()
    articles = _articles(grounding)
    figures = unsupported_figures(text, articles)
    shared = overlap(text, articles)
    if invalid or figures or not text or shared < min_overlap:
        why = (
            f"cited unknown articles {invalid}"
            if invalid
            else f"figures not in the articles: {sorted(figures)}"
            if figures
            else "empty reply"
            if not text
            else f"only {shared:.0%} of its words are in the articles"
        )
        return Answer(quote(grounding), list(grounding.sources), quoted=True, reason=why)
    order = {s.doc_id: s for s in grounding.sources}
    chosen = [order[c] for c in dict.fromkeys(cited) if c in order] or list(grounding.sources)
    return Answer(text, chosen)
