"""What the help center says about a conversation, and whether it says enough to answer.

The question is the customer's last turn; earlier customer turns form a second, lower-weight
query, so "and on Thanksgiving?" after a question about a store's hours still finds the
holiday hours. Articles are ranked by their best chunk (index.py). Whether the articles answer
at all is decided on finer grain than the chunk: the best single sentence or table row of the
top articles must come close enough to the question (`min_support`). A topic match alone
("do you validate parking at the mall?" lands on the mall store's page) is not an answer.
Questions about one customer's own order, points or account ("where is my order HB-4041…")
need a lookup the documents cannot do, and go to a person too; so do messages that try to talk
the bot out of its rules ("ignore your instructions and…"): whatever they ask for, the answer
is not in the help center.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.embeddings import Embeddings

from knowledge.index import ChunkHit, TenantIndex

EXCERPT_CHARS = 480
CANDIDATE_DOCS = 3
# A turn that starts by continuing ("and ...", "what about ...") or points back ("it", "that",
# "there") is read together with the turns before it.
_FOLLOW_UP = re.compile(
    r"^\W*(?:and|also|but|so|then|what about|how about|same for|or)\b"
    r"|\b(?:it|its|it's|that|this|they|them|those|these|there|one|ones)\b",
    re.IGNORECASE,
)
# Own-account lookups: a reference number, an email address, or asking after one's own things.
_LOOKUP = re.compile(
    r"\b[A-Z]{0,4}[-#]?\d{5,}\b"
    r"|[\w.+-]+@[\w-]+\.[\w.]+"
    r"|\bwhere(?:'s| is| are)\s+my\b"
    r"|\bstatus of my\b"
    r"|\bhow (?:many|much)\b[^?.!]{0,40}\b(?:do i have|have i got|i have left|is left on my)\b",
    re.IGNORECASE,
)

# Attempts to override the bot's instructions (or to read them out, or to pass off text as a
# system message), and fishing for staff-only secrets: whatever they ask for, it is not
# something the help center answers.
_MANIPULATION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.?!]{0,40}\b(?:instructions|rules|prompt|guidelines)\b"
    r"|\bsystem prompt\b|\bdeveloper mode\b|\bjailbreak|\byou are now\b"
    r"|\bpretend (?:to be|you are)\b|\bact as (?:an? )?(?:admin|developer|manager)\b"
    r"|^\W*\[?(?:system|admin|developer|assistant)\]?\s*:"
    r"|\b(?:repeat|reveal|show|print|tell me|what are|what's|what is)\b[^.?!]{0,30}"
    r"\b(?:your|the)\s+(?:instructions|prompt|rules|configuration)\b"
    r"|\b(?:staff|employee|admin|internal|manager'?s?)\b[^.?!]{0,30}\b(?:codes?|passwords?|pins?|keys?)\b",
    re.IGNORECASE | re.MULTILINE,
)
# Pressure for more than the policy gives: the policy is quoted and a person offered, never
# a promise.
_PRESSURE = re.compile(
    r"\b(?:promise|guarantee|make an exception|an exception for me|i demand|i insist|or else"
    r"|legal action|my lawyer|sue you|chargeback|compensate|compensation)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Source:
    """An article a reply stands on, as the widget shows it."""

    doc_id: str
    title: str
    excerpt: str
    url: str | None
    support: float  # how close its best sentence or row comes to the question (cosine)

    def shown(self) -> dict[str, str | None]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "excerpt": self.excerpt,
            "url": self.url,
        }


@dataclass
class Grounding:
    query: str
    retrieved: list[str]  # document ids, best first
    sources: list[Source] = field(default_factory=list)  # what the reply may cite, best first
    context: list[tuple[str, str]] = field(default_factory=list)  # (label, text) for the prompt
    answerable: bool = False
    reason: str = ""  # why not answerable
    pressed: bool = False  # asks for a promise or exception: quote the policy, offer a person

    @property
    def support(self) -> float:
        return self.sources[0].support if self.sources else 0.0


def conversation_queries(customer_turns: Sequence[str]) -> list[tuple[str, float]]:
    """(query, weight): the last turn, and the last three together when there are more."""
    turns = [t.strip() for t in customer_turns if t.strip()]
    if not turns:
        return []
    queries = [(turns[-1], 1.0)]
    if len(turns) > 1:
        queries.append((" ".join(turns[-3:]), 0.5))
    return queries


def needs_lookup(text: str) -> bool:
    return bool(_LOOKUP.search(text))


def manipulates(text: str) -> bool:
    return bool(_MANIPULATION.search(text))


def presses(text: str) -> bool:
    return bool(_PRESSURE.search(text))


@dataclass(frozen=True)
class _Unit:
    score: float
    position: int  # chunk position in the index
    ordinal: int  # place within the chunk


def is_follow_up(text: str) -> bool:
    """A turn that leans on the ones before it: "and on Thanksgiving?", "how long will you
    keep it?". Only such a turn is answered with the earlier turns' help; a new question
    ("do you sell matcha?") must be answered on its own."""
    return bool(_FOLLOW_UP.search(text))


def _best_units(
    index: TenantIndex, hits: Sequence[ChunkHit], query_vectors: np.ndarray, follow_up: bool
) -> list[_Unit]:
    """Every unit of the hits' chunks with its cosine to the question, best first; for a
    follow-up, the best of the last turn and the conversation's recent turns."""
    scored: list[_Unit] = []
    for hit in hits:
        vectors = index.unit_vectors[hit.position]
        if len(vectors) == 0:
            continue
        each = vectors @ query_vectors.T
        scores = each.max(axis=1) if follow_up else each[:, 0]
        scored += [_Unit(float(score), hit.position, i) for i, score in enumerate(scores)]
    return sorted(scored, key=lambda unit: -unit.score)


def excerpt(index: TenantIndex, units: Sequence[_Unit], limit: int = EXCERPT_CHARS) -> str:
    """The three units closest to the question, best first, each with the one after it (the
    answer often follows the sentence that matches the question: "Lost your card? ... We
    freeze the balance within 1 business day"), within ``limit`` characters."""
    picked: list[tuple[int, int]] = []
    for unit in units[:3]:
        count = len(index.chunks[unit.position].units)
        for ordinal in (unit.ordinal, unit.ordinal + 1):
            if ordinal < count and (unit.position, ordinal) not in picked:
                picked.append((unit.position, ordinal))
    kept: list[tuple[int, int]] = []
    size = 0
    for place in picked:  # best first: the first pick always makes it in
        length = len(index.chunks[place[0]].units[place[1]]) + 1
        if kept and size + length > limit:
            continue
        kept.append(place)
        size += length
    texts = [index.chunks[p].units[o] for p, o in kept]
    return " ".join(t if len(t) <= limit else t[: limit - 1].rstrip() + "…" for t in texts)


def ground(
    index: TenantIndex,
    embeddings: Embeddings,
    customer_turns: Sequence[str],
    *,
    min_support: float,
    max_sources: int = 1,
    source_margin: float = 0.05,
    context_chunks: int = 2,
) -> Grounding:
    queries = conversation_queries(customer_turns)
    if not queries:
        return Grounding(query="", retrieved=[], reason="no question")
    texts = [q for q, _ in queries]
    vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    hits = index.search([(t, v, w) for (t, w), v in zip(queries, vectors, strict=True)])
    retrieved: list[str] = []
    by_doc: dict[str, list[ChunkHit]] = {}
    for hit in hits:
        if hit.chunk.doc_id not in by_doc:
            retrieved.append(hit.chunk.doc_id)
            by_doc[hit.chunk.doc_id] = []
        by_doc[hit.chunk.doc_id].append(hit)
    grounding = Grounding(query=texts[0], retrieved=retrieved)
    if not hits:
        grounding.reason = "the help center has no documents"
        return grounding

    candidates: list[Source] = []
    for doc_id in retrieved[:CANDIDATE_DOCS]:
        units = _best_units(index, by_doc[doc_id], vectors, is_follow_up(texts[0]))
        if not units:
            continue
        first = by_doc[doc_id][0].chunk
        candidates.append(
            Source(doc_id, first.title, excerpt(index, units), first.url, units[0].score)
        )
    # Rank order decides the first source; support only decides whether it is good enough and
    # which runners-up are close enough to cite beside it.
    if candidates:
        top = candidates[0]
        rest = [
            c for c in candidates[1:] if c.support >= max(min_support, top.support - source_margin)
        ]
        grounding.sources = [top, *rest][:max_sources]
    cited = {s.doc_id for s in grounding.sources}
    chosen = [h for h in hits if h.chunk.doc_id in cited][:context_chunks]
    grounding.context = [
        (f"{h.chunk.doc_id}", _context_text(h)) for h in sorted(chosen, key=lambda h: h.position)
    ]
    if needs_lookup(texts[0]):
        grounding.reason = "asks about the customer's own order or account"
    elif manipulates(texts[0]):
        grounding.reason = "asks the assistant to set its instructions aside"
    elif grounding.support < min_support:
        grounding.reason = f"best support {grounding.support:.2f} < {min_support:.2f}"
    else:
        grounding.answerable = True
        grounding.pressed = presses(texts[0])
    return grounding


def _context_text(hit: ChunkHit) -> str:
    path = " > ".join(hit.chunk.heading_path[1:] if len(hit.chunk.heading_path) > 1 else [])
    head = f"{hit.chunk.title}" + (f" > {path}" if path else "")
    return f"{head}\n{hit.chunk.text}"
