"""One tenant's window of conversations -> a clean, redacted, deduplicated training set.

Every filter here exists because the training data is attacker-reachable text that the model
will imitate: internal notes never train, blocked or unverified customers never train, a flagged
conversation never trains, and no single customer can fill a night's data. What each filter
removed is counted in the dataset card, which is stored with the run.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.chat_format import (
    Turn,
    articles_in,
    conversation_turns,
    customer_questions,
    encode,
    has_target,
)
from core.db import id_chunks
from core.models import (
    NATIVE_SOURCE,
    Conversation,
    ConversationStatus,
    Customer,
    Message,
    Role,
    Suggestion,
    SuggestionStatus,
)
from core.settings import Settings
from finetune_loop.redaction import Redactor


@dataclass
class Example:
    key: str  # "c<conversation id>" or "s<suggestion id>": stable across runs
    conversation_id: int
    customer_key: str
    turns: list[Turn]
    message_ids: list[int]
    customer_id: int | None
    replay: bool = False

    def text(self) -> str:
        return "\n".join(f"{t.role}: {t.text}" for t in self.turns if t.role != "system")


@dataclass
class Dataset:
    train: list[Example]
    validation: list[Example]
    card: dict[str, Any] = field(default_factory=dict)

    def lineage(self) -> list[tuple[int, int | None]]:
        """(message id, customer id) of every message a training example was built from."""
        return sorted(
            {(m, e.customer_id) for e in self.train for m in e.message_ids},
            key=lambda pair: pair[0],
        )


def _eligible(
    session: Session, tenant_id: int, settings: Settings, removed: Counter[str]
) -> dict[int, Conversation]:
    """Resolved widget conversations, and every imported/CRM conversation (a record of what
    agents did), minus flagged ones and those of blocked or unverified customers."""
    conversations = session.exec(
        select(Conversation).where(Conversation.tenant_id == tenant_id)
    ).all()
    customers = {
        c.id: c for c in session.exec(select(Customer).where(Customer.tenant_id == tenant_id))
    }
    kept: dict[int, Conversation] = {}
    for conversation in conversations:
        assert conversation.id is not None
        customer = customers.get(conversation.customer_id)
        native = conversation.source == NATIVE_SOURCE
        if native and conversation.status != ConversationStatus.RESOLVED:
            removed["not resolved"] += 1
        elif conversation.flagged:
            removed["flagged by an agent"] += 1
        elif customer is not None and customer.blocked:
            removed["blocked customer"] += 1
        elif native and settings.finetune_require_verified and not (customer and customer.verified):
            removed["unverified customer"] += 1
        else:
            kept[conversation.id] = conversation
    return kept


Grounder = Callable[[list[str]], str]  # customer turns -> the system prompt serving would use


BOT_NOT_LEARNED = "bot replies not learned (no positive signal)"


def target_source(message: Message, conversation: Conversation, min_csat: int) -> str | None:
    """Why a reply is worth learning, or None. Targets come from people: a bot reply learned
    without a person's say-so teaches the model its own output (errors that reinforce
    themselves, and whatever a customer talked it into saying)."""
    if message.customer_rating == -1:  # rated down: context, never a target
        return None
    if message.role == Role.AGENT:
        return "agent messages"
    if message.role != Role.BOT:
        return None
    if message.customer_rating == 1:
        return "bot replies rated up"
    if (
        min_csat
        and conversation.csat is not None
        and conversation.csat >= min_csat
        and conversation.escalated_at is None
        and conversation.status == ConversationStatus.RESOLVED
    ):
        return f"bot replies resolved without handoff, CSAT >= {min_csat}"
    return None


def _one_of(message_ids: set[int | None]) -> Callable[[Message], bool]:
    return lambda message: message.id in message_ids


def _turns(
    messages: list[Message],
    system_prompt: str | Grounder,
    redact: Redactor,
    target: Callable[[Message], bool] = lambda _message: False,
) -> tuple[list[Turn], list[int]]:
    """The conversation as serving would show it to the model, redacted; (turns, message ids).
    With a grounder, the system prompt carries the help-center articles retrieval finds for
    the customer's questions, as serving's would."""
    if callable(system_prompt):
        system_prompt = system_prompt(customer_questions(messages))
    turns, used = conversation_turns(system_prompt, messages, target=target, rewrite=redact)
    return turns, [m.id for m in used if m.id is not None]


def _conversation_examples(
    session: Session,
    conversations: dict[int, Conversation],
    until: datetime,
    settings: Settings,
    removed: Counter[str],
    stats: Counter[str],
    targets: Counter[str],
    grounder: Grounder | None = None,
) -> list[Example]:
    examples = []
    by_conversation: defaultdict[int, list[Message]] = defaultdict(list)
    for chunk in id_chunks(conversations):
        rows = session.exec(
            select(Message)
            .where(col(Message.conversation_id).in_(chunk), Message.created_at <= until)
            .order_by(col(Message.conversation_id), col(Message.seq))
        ).all()
        for message in rows:
            by_conversation[message.conversation_id].append(message)
    for cid, conversation in sorted(conversations.items()):
        messages = by_conversation.get(cid, [])
        stats["internal notes left out"] += sum(m.internal_note for m in messages)
        redact = Redactor(settings.finetune_order_id_patterns)
        sources = {
            m.id: target_source(m, conversation, settings.finetune_bot_target_min_csat)
            for m in messages
        }
        turns, used = _turns(
            messages,
            grounder or settings.system_prompt,
            redact,
            target=_one_of({i for i, source in sources.items() if source is not None}),
        )
        stats["PII values redacted"] += redact.redacted
        spoken = [m for m in messages if not m.internal_note and m.text.strip()]
        targets[BOT_NOT_LEARNED] += sum(
            m.role == Role.BOT and sources[m.id] is None for m in spoken
        )
        if not has_target(turns):
            removed["no customer turn or no reply by a person or rated up"] += 1
            continue
        for message in spoken:
            if (source := sources[message.id]) is not None:
                targets[source] += 1
        customer = conversation.customer_id
        examples.append(
            Example(
                key=f"c{cid}",
                conversation_id=cid,
                customer_key=f"customer:{customer}" if customer else f"conversation:{cid}",
                turns=turns,
                message_ids=used,
                customer_id=customer,
            )
        )
    return examples


def _review_examples(
    session: Session,
    tenant_id: int,
    conversations: dict[int, Conversation],
    since: datetime | None,
    until: datetime,
    settings: Settings,
    stats: Counter[str],
    targets: Counter[str],
    grounder: Grounder | None = None,
) -> list[Example]:
    """An accepted or edited suggestion: the conversation up to the customer's message, and
    the text the agent actually sent as the only target."""
    query = select(Suggestion).where(
        Suggestion.tenant_id == tenant_id,
        col(Suggestion.status).in_([SuggestionStatus.ACCEPTED, SuggestionStatus.EDITED]),
    )
    query = query.where(col(Suggestion.reviewed_at) <= until)
    if since is not None:
        query = query.where(col(Suggestion.reviewed_at) > since)
    examples = []
    for suggestion in session.exec(query.order_by(col(Suggestion.id))):
        conversation = conversations.get(suggestion.conversation_id)
        final = (suggestion.final_text or suggestion.draft_text).strip()
        if conversation is None or not final:
            continue
        anchor = session.get(Message, suggestion.reply_to_message_id)
        assert anchor is not None and suggestion.id is not None
        history = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.seq <= anchor.seq)
            .order_by(col(Message.seq))
        ).all()
        redact = Redactor(settings.finetune_order_id_patterns)
        turns, used = _turns(list(history), grounder or settings.system_prompt, redact)
        for turn in turns:
            turn.train = False
        turns.append(Turn("assistant", redact(final), train=True))
        stats["PII values redacted"] += redact.redacted
        if turns[-2].role != "user":
            continue
        stats[f"reviews {suggestion.status}"] += 1
        targets[f"suggestions {suggestion.status} (the text the agent sent)"] += 1
        examples.append(
            Example(
                key=f"s{suggestion.id}",
                conversation_id=conversation.id or 0,
                customer_key=f"customer:{conversation.customer_id}"
                if conversation.customer_id
                else f"conversation:{conversation.id}",
                turns=turns,
                message_ids=used
                + ([suggestion.sent_message_id] if suggestion.sent_message_id else []),
                customer_id=conversation.customer_id,
            )
        )
    return examples


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def _shingles(text: str) -> set[str]:
    words = _normalised(text).split()
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def deduplicate(examples: list[Example], threshold: float, removed: Counter[str]) -> list[Example]:
    """Exact duplicates by hash, then near-duplicates by Jaccard similarity of word 3-grams
    (a few thousand examples a night: the pairwise check is cheap, bucketed by length)."""
    seen: set[str] = set()
    unique: list[Example] = []
    for example in examples:
        digest = hashlib.sha256(_normalised(example.text()).encode()).hexdigest()
        if digest in seen:
            removed["exact duplicate"] += 1
            continue
        seen.add(digest)
        unique.append(example)
    kept: list[tuple[Example, set[str]]] = []
    for example in unique:
        grams = _shingles(example.text())
        if any(
            len(grams & other) / len(grams | other) >= threshold
            for _, other in kept
            if min(len(grams), len(other)) >= threshold * max(len(grams), len(other))
        ):
            removed["near duplicate"] += 1
            continue
        kept.append((example, grams))
    return [example for example, _ in kept]


def _cap_per_customer(examples: list[Example], cap: int, removed: Counter[str]) -> list[Example]:
    counts: Counter[str] = Counter()
    kept = []
    for example in examples:
        counts[example.customer_key] += 1
        if counts[example.customer_key] > cap:
            removed["over the per-customer cap"] += 1
            continue
        kept.append(example)
    return kept


def _in_validation(example: Example, fraction: float, seed: int) -> bool:
    """By conversation, from a hash: the same conversation is always on the same side."""
    digest = hashlib.sha256(f"{seed}:{example.conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _touched_since(
    session: Session, ids: list[int], since: datetime | None, until: datetime
) -> set[int]:
    touched: set[int] = set()
    for chunk in id_chunks(ids):
        query = select(Message.conversation_id).where(
            col(Message.conversation_id).in_(chunk), Message.created_at <= until
        )
        if since is not None:
            query = query.where(Message.created_at > since)
        touched.update(session.exec(query.distinct()).all())
    return touched


def build_dataset(
    *,
    session: Session,
    tenant_id: int,
    settings: Settings,
    since: datetime | None,
    until: datetime,
    tokenizer: Any | None = None,
    grounder: Grounder | None = None,
) -> Dataset:
    """The window (since, until]: `since` is the end of the last successful window (None:
    everything). Conversations with a message in it are new; a replay sample of older ones
    guards against forgetting. Nothing after `until` is read, so a resumed run sees the very
    same data. ``grounder``: the tenant's help center, so examples carry the articles
    retrieval gives for them (serving's prompts, learned as they will be served)."""
    removed: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    targets: Counter[str] = Counter()  # target messages by where they came from
    eligible = _eligible(session, tenant_id, settings, removed)
    new_ids = _touched_since(session, list(eligible), since, until)
    fresh = {cid: c for cid, c in eligible.items() if cid in new_ids}
    older = {cid: c for cid, c in eligible.items() if cid not in new_ids}

    examples = _conversation_examples(
        session, fresh, until, settings, removed, stats, targets, grounder
    )
    examples += _review_examples(
        session, tenant_id, eligible, since, until, settings, stats, targets, grounder
    )
    examples = deduplicate(examples, settings.finetune_near_duplicate_jaccard, removed)
    examples = _cap_per_customer(examples, settings.finetune_max_examples_per_customer, removed)
    new_count = len(examples)

    replay: list[Example] = []
    wanted = round(new_count * settings.finetune_replay_fraction)
    if older and wanted:
        # Redact and format only as many older conversations as the sample needs, not all
        # history: draw them in a seeded order, a chunk at a time (some have no reply to learn).
        order = sorted(older)
        random.Random(settings.training.seed).shuffle(order)
        for start in range(0, len(order), wanted):
            chunk = {cid: older[cid] for cid in order[start : start + wanted]}
            replay += _conversation_examples(
                session, chunk, until, settings, Counter(), Counter(), Counter(), grounder
            )
            if len(replay) >= wanted:
                break
        replay = replay[:wanted]
        for example in replay:
            example.replay = True
    examples += replay

    fraction, seed = settings.finetune_validation_fraction, settings.training.seed
    validation = [e for e in examples if _in_validation(e, fraction, seed)]
    train = [e for e in examples if not _in_validation(e, fraction, seed)]
    if train and not validation:  # tiny sets: still measure something
        validation.append(train.pop())

    card: dict[str, Any] = {
        "tenant_id": tenant_id,
        "since": since.isoformat() if since else None,
        "eligible_conversations": len(eligible),
        "new_conversations": len(fresh),
        "new_examples": new_count,
        "replay_examples": len(replay),
        "train_examples": len(train),
        "validation_examples": len(validation),
        "removed": dict(sorted(removed.items())),
        "targets": dict(sorted(targets.items())),
        **dict(sorted(stats.items())),
    }
    card["grounded_examples"] = sum(bool(articles_in(e.turns[0].text)) for e in examples)
    if tokenizer is not None:
        card["tokens"] = token_stats(tokenizer, train)
    return Dataset(train=train, validation=validation, card=card)


def token_stats(tokenizer: Any, examples: list[Example]) -> dict[str, float]:
    lengths, targets = [], 0
    for example in examples:
        ids, labels = encode(tokenizer, example.turns, max_len=10**6)
        lengths.append(len(ids))
        targets += sum(label != -100 for label in labels)
    if not lengths:
        return {"total": 0, "target": 0, "mean": 0.0, "max": 0}
    return {
        "total": sum(lengths),
        "target": targets,
        "mean": round(sum(lengths) / len(lengths), 1),
        "max": max(lengths),
    }


def example_to_json(example: Example) -> dict[str, Any]:
    return asdict(example)
