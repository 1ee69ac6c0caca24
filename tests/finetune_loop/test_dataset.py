"""The dataset builder: one tenant's rows only, what each poisoning guard removes, replies as
the only targets, deterministic splits, agent reviews as targets, and a card that says it all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select
from transformers import AutoTokenizer

from core.chat_format import IGNORE, encode
from core.crud.conversations import append_message
from core.db import session_scope
from core.models import Conversation, Message, Role, Suggestion, SuggestionStatus, utcnow
from core.settings import Settings
from finetune_loop.dataset import Dataset, build_dataset
from tests.conftest import make_settings
from tests.factories import make_tenant
from tests.finetune_loop.factories import add_conversation, add_customer


def settings_for(tmp_path: Path, db_url: str, **overrides: object) -> Settings:
    return make_settings(tmp_path, db_url, finetune_validation_fraction=0.3, **overrides)


def build(db: DbEngine, tenant_id: int, settings: Settings, since=None) -> Dataset:  # noqa: ANN001
    with session_scope(db) as session:
        return build_dataset(
            session=session, tenant_id=tenant_id, settings=settings, since=since, until=utcnow()
        )


def chat(n: int, who: str = "") -> list[tuple[Role, str]]:
    return [
        (Role.CUSTOMER, f"Hello, I would like {n} cappuccinos with oat milk {who}"),
        (Role.AGENT, f"Sure, {n} oat cappuccinos coming right up, anything else? {who}"),
        (Role.CUSTOMER, f"No thanks, that is all for order number {n} today"),
        (Role.AGENT, f"Great, they will be ready in {n + 2} minutes at the bar"),
    ]


def every_text(dataset: Dataset) -> str:
    return "\n".join(e.text() for e in dataset.train + dataset.validation)


def test_only_the_tenants_own_eligible_conversations_are_used(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    acme, _ = make_tenant(db, "acme")
    other, _ = make_tenant(db, "globex")
    assert acme.id and other.id
    settings = settings_for(tmp_path, db_url)
    verified = add_customer(db, acme.id)
    for n in range(6):
        add_conversation(db, acme.id, chat(n), customer_id=verified, notes=["VIP, comp them"])
    add_conversation(
        db, other.id, chat(99, "GLOBEX-SECRET"), customer_id=add_customer(db, other.id)
    )
    add_conversation(db, acme.id, chat(50, "still-open"), customer_id=verified, resolved=False)
    add_conversation(db, acme.id, chat(51, "flagged"), customer_id=verified, flagged=True)
    add_conversation(
        db, acme.id, chat(52, "blocked"), customer_id=add_customer(db, acme.id, blocked=True)
    )
    add_conversation(
        db, acme.id, chat(53, "anonymous"), customer_id=add_customer(db, acme.id, verified=False)
    )

    dataset = build(
        db, acme.id, settings.model_copy(update={"finetune_max_examples_per_customer": 50})
    )
    text = every_text(dataset)
    assert "GLOBEX-SECRET" not in text and "VIP" not in text
    for excluded in ("still-open", "flagged", "blocked", "anonymous"):
        assert excluded not in text
    assert dataset.card["removed"] == {
        "blocked customer": 1,
        "flagged by an agent": 1,
        "not resolved": 1,
        "unverified customer": 1,
    }
    assert dataset.card["internal notes left out"] == 6
    assert len(dataset.train) + len(dataset.validation) == 6


def test_customer_text_is_never_a_target(
    db: DbEngine, tmp_path: Path, db_url: str, model_dir: Path
) -> None:
    acme, _ = make_tenant(db)
    assert acme.id
    add_conversation(db, acme.id, chat(3), customer_id=add_customer(db, acme.id))
    dataset = build(db, acme.id, settings_for(tmp_path, db_url))
    (example,) = dataset.train + dataset.validation
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids, labels = encode(tokenizer, example.turns, 1024)
    target = tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != IGNORE])
    assert "cappuccinos coming right up" in target and "ready in 5 minutes" in target
    assert "oat milk" not in target and "Hello" not in target
    assert "friendly, concise" not in target  # the system prompt is context too


def test_a_bot_reply_the_customer_rated_down_is_context_but_never_a_target(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    acme, _ = make_tenant(db)
    assert acme.id
    turns = [
        (Role.CUSTOMER, "Do you have decaf beans in stock today?"),
        (Role.BOT, "We only sell tea."),
        (Role.CUSTOMER, "Are you sure? I bought decaf last week."),
        (Role.AGENT, "Sorry about that, yes: decaf beans are on the second shelf."),
    ]
    cid = add_conversation(db, acme.id, turns, customer_id=add_customer(db, acme.id))
    with session_scope(db) as session:
        bad = session.exec(
            select(Message).where(Message.conversation_id == cid, Message.role == Role.BOT)
        ).one()
        bad.customer_rating = -1
        session.add(bad)
    (example,) = (d := build(db, acme.id, settings_for(tmp_path, db_url))).train + d.validation
    targets = [t.text for t in example.turns if t.train]
    assert targets == ["Sorry about that, yes: decaf beans are on the second shelf."]
    assert "We only sell tea." in example.text()


def test_targets_come_from_people_and_bot_replies_only_with_a_positive_signal(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    """In auto mode the bot answers most conversations: learning those replies unasked would
    train the model on its own output. Agents' messages are targets; a bot reply only when
    the customer rated it up, or the conversation was resolved without a handoff and rated
    CSAT >= 4; the card counts each source."""
    acme, _ = make_tenant(db)
    assert acme.id

    def bot_chat(
        n: int, rating: int | None = None, csat: int | None = None, escalated: bool = False
    ) -> str:
        cid = add_conversation(
            db,
            acme.id,  # type: ignore[arg-type]
            [
                (Role.CUSTOMER, f"Can I order {n} flat whites for collection at noon today?"),
                (Role.BOT, f"BOT-{n}: yes, {n} flat whites will be ready at noon."),
            ],
            customer_id=add_customer(db, acme.id),  # type: ignore[arg-type]
        )
        with session_scope(db) as session:
            conversation = session.get(Conversation, cid)
            assert conversation is not None
            conversation.csat = csat
            conversation.escalated_at = utcnow() if escalated else None
            session.add(conversation)
            reply = session.exec(
                select(Message).where(Message.conversation_id == cid, Message.role == Role.BOT)
            ).one()
            reply.customer_rating = rating
            session.add(reply)
        return f"BOT-{n}:"

    unasked = bot_chat(1)
    rated_up = bot_chat(2, rating=1)
    happy = bot_chat(3, csat=5)
    lukewarm = bot_chat(4, csat=3)
    handed_off = bot_chat(5, csat=5, escalated=True)
    rated_down_but_happy = bot_chat(6, rating=-1, csat=5)
    add_conversation(db, acme.id, chat(7), customer_id=add_customer(db, acme.id))

    dataset = build(db, acme.id, settings_for(tmp_path, db_url))
    learned = [
        turn.text for e in dataset.train + dataset.validation for turn in e.turns if turn.train
    ]
    assert any(text.startswith(rated_up) for text in learned)
    assert any(text.startswith(happy) for text in learned)
    for never in (unasked, lukewarm, handed_off, rated_down_but_happy):
        assert not any(text.startswith(never) for text in learned), never
    assert dataset.card["targets"] == {
        "agent messages": 2,
        "bot replies rated up": 1,
        "bot replies resolved without handoff, CSAT >= 4": 1,
        "bot replies not learned (no positive signal)": 4,
    }
    assert dataset.card["removed"]["no customer turn or no reply by a person or rated up"] == 4

    thumbs_only = build(db, acme.id, settings_for(tmp_path, db_url, finetune_bot_target_min_csat=0))
    assert "bot replies resolved without handoff, CSAT >= 4" not in thumbs_only.card["targets"]


def test_an_agent_message_merged_with_a_bot_reply_is_not_a_target(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    acme, _ = make_tenant(db)
    assert acme.id
    turns = [
        (Role.CUSTOMER, "Is the oat milk surcharge still fifty cents this month?"),
        (Role.AGENT, "Yes, fifty cents for oat milk."),
        (Role.BOT, "Anything else I can help with?"),  # same speaker for the model: one turn
        (Role.CUSTOMER, "And soy milk, is it the same price as oat milk?"),
        (Role.AGENT, "Soy milk is free of charge."),
    ]
    add_conversation(db, acme.id, turns, customer_id=add_customer(db, acme.id))
    (example,) = (d := build(db, acme.id, settings_for(tmp_path, db_url))).train + d.validation
    assert [t.text for t in example.turns if t.train] == ["Soy milk is free of charge."]


def test_duplicates_near_duplicates_and_a_chatty_customer_are_capped(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    acme, _ = make_tenant(db)
    assert acme.id
    settings = settings_for(tmp_path, db_url, finetune_max_examples_per_customer=2)
    flooder = add_customer(db, acme.id)
    for n in range(5):
        add_conversation(db, acme.id, chat(100 + n, f"spam {n}"), customer_id=flooder)
    add_conversation(db, acme.id, chat(7), customer_id=add_customer(db, acme.id))
    add_conversation(db, acme.id, chat(7), customer_id=add_customer(db, acme.id))  # exact copy
    near = chat(8) + [(Role.CUSTOMER, "thanks"), (Role.AGENT, "You are welcome")]
    add_conversation(db, acme.id, chat(8), customer_id=add_customer(db, acme.id))
    add_conversation(db, acme.id, near, customer_id=add_customer(db, acme.id))
    dataset = build(
        db, acme.id, settings.model_copy(update={"finetune_near_duplicate_jaccard": 0.8})
    )
    removed = dataset.card["removed"]
    assert removed["exact duplicate"] == 1 and removed["near duplicate"] == 1
    assert removed["over the per-customer cap"] == 3
    assert dataset.card["new_examples"] == 4  # 2 of the flooder's, chat 7 once, chat 8 once


def test_the_split_is_by_conversation_and_the_same_every_time(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    acme, _ = make_tenant(db)
    assert acme.id
    settings = settings_for(tmp_path, db_url, finetune_max_examples_per_customer=100)
    customer = add_customer(db, acme.id)
    for n in range(20):
        add_conversation(db, acme.id, chat(n, f"c{n}"), customer_id=customer)
    first, second = build(db, acme.id, settings), build(db, acme.id, settings)
    keys = lambda d: ([e.key for e in d.train], [e.key for e in d.validation])  # noqa: E731
    assert keys(first) == keys(second)
    assert not {e.conversation_id for e in first.train} & {
        e.conversation_id for e in first.validation
    }
    assert 0 < len(first.validation) < len(first.train)


def test_an_edited_suggestion_trains_on_what_the_agent_sent(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    acme, _ = make_tenant(db)
    assert acme.id
    cid = add_conversation(
        db,
        acme.id,
        [(Role.CUSTOMER, "Do you have decaf espresso?")],
        customer_id=add_customer(db, acme.id),
    )
    with session_scope(db) as session:
        conversation = session.get(Conversation, cid)
        assert conversation is not None
        question = session.exec(select(Message).where(Message.conversation_id == cid)).one()
        sent, _ = append_message(
            session=session, conversation=conversation, role=Role.AGENT, text="Yes, all day long."
        )
        for role, text in [(Role.CUSTOMER, "Great, one please"), (Role.AGENT, "Coming up!")]:
            append_message(session=session, conversation=conversation, role=role, text=text)
        session.add(
            Suggestion(
                tenant_id=acme.id,
                conversation_id=cid,
                reply_to_message_id=question.id,
                draft_text="We have no decaf.",
                status=SuggestionStatus.EDITED,
                final_text="Yes, all day long.",
                sent_message_id=sent.id,
                reviewed_at=utcnow() - timedelta(seconds=1),
            )
        )
    dataset = build(db, acme.id, settings_for(tmp_path, db_url))
    review = next(e for e in dataset.train + dataset.validation if e.key.startswith("s"))
    assert [(t.role, t.text, t.train) for t in review.turns[1:]] == [
        ("user", "Do you have decaf espresso?", False),
        ("assistant", "Yes, all day long.", True),
    ]
    assert "no decaf" not in every_text(dataset)
    assert dataset.card["reviews edited"] == 1


def test_pii_is_redacted_and_later_windows_only_take_new_conversations_plus_replay(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    acme, _ = make_tenant(db)
    assert acme.id
    settings = settings_for(
        tmp_path, db_url, finetune_max_examples_per_customer=100, finetune_replay_fraction=0.5
    )
    customer = add_customer(db, acme.id)
    for n in range(6):
        add_conversation(db, acme.id, chat(n, "mail me at dana@example.com"), customer_id=customer)
    first = build(db, acme.id, settings)
    assert "dana@example.com" not in every_text(first) and "<EMAIL_1>" in every_text(first)
    assert first.card["PII values redacted"] >= 6
    cutoff = utcnow()
    for n in range(10, 14):
        add_conversation(db, acme.id, chat(n, "later"), customer_id=customer)
    later = build(db, acme.id, settings, since=cutoff)
    assert later.card["new_conversations"] == 4 and later.card["replay_examples"] == 2
    replayed = [e for e in later.train + later.validation if e.replay]
    assert len(replayed) == 2 and all("later" not in e.text() for e in replayed)


def test_examples_carry_the_articles_retrieval_gives_them(
    db: DbEngine, tmp_path: Path, db_url: str
) -> None:
    from core.settings import KnowledgeConfig
    from knowledge import KnowledgeBase, default_embeddings, grounded_prompt
    from tests.knowledge.corpus import index_folder, write_articles

    acme, _ = make_tenant(db, "acme")
    assert acme.id
    index_folder(db, acme.id, write_articles(tmp_path / "help"))
    settings = settings_for(tmp_path, db_url)
    customer = add_customer(db, acme.id)
    add_conversation(
        db,
        acme.id,
        [
            (Role.CUSTOMER, "How much is the delivery fee for a small order?"),
            (Role.AGENT, "It is $3.49 under $25, and free above."),
        ],
        customer_id=customer,
    )
    add_conversation(
        db,
        acme.id,
        [(Role.CUSTOMER, "Do you sell matcha lattes?"), (Role.AGENT, "Not at the moment, sorry!")],
        customer_id=customer,
    )
    ground = KnowledgeBase(db, KnowledgeConfig(), default_embeddings()).snapshot(acme.id)

    def grounder(asked: list[str]) -> str:  # as the nightly run's (finetune_loop/steps.py)
        return grounded_prompt(settings.system_prompt, ground(asked), 700)

    with session_scope(db) as session:
        dataset = build_dataset(
            session=session,
            tenant_id=acme.id,
            settings=settings,
            since=None,
            until=utcnow(),
            grounder=grounder,
        )
    by_question = {e.turns[1].text: e.turns[0].text for e in dataset.train + dataset.validation}
    delivery = by_question["How much is the delivery fee for a small order?"]
    assert delivery.startswith(settings.system_prompt) and "[delivery]" in delivery
    assert "$3.49" in delivery
    assert by_question["Do you sell matcha lattes?"] == settings.system_prompt
    assert dataset.card["grounded_examples"] == 1
