"""One prompt format: the conversation an adapter is trained on is, token for token, the prompt
it is served; and a prompt is cut by tokens, keeping the system prompt, never by messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session

from chat_service.adapter_leases import AdapterLeases
from chat_service.handoff import ESCALATED, HANDED_BACK, RESOLVED, Handoff, agent_joined
from chat_service.hot_swap import AdapterManager
from chat_service.hub import ConversationHub
from chat_service.responder import Responder
from core.chat_format import IGNORE, encode
from core.crud import handoff
from core.crud.conversations import append_message
from core.db import session_scope
from core.models import Conversation, Role, utcnow
from core.settings import Settings
from engines.embedded import EmbeddedEngine
from finetune_loop.dataset import build_dataset
from tests.conftest import make_settings
from tests.factories import long_message, make_tenant
from tests.finetune_loop.factories import add_conversation, add_customer


def responder_for(db: DbEngine, engine: EmbeddedEngine, settings: Settings) -> Responder:
    hub, leases = ConversationHub(), AdapterLeases()
    return Responder(
        db=db,
        engine=engine,
        hub=hub,
        settings=settings,
        adapters=AdapterManager(db=db, engine=engine, leases=leases, settings=settings),
        leases=leases,
        handoff=Handoff(db=db, hub=hub, settings=settings),
    )


def act(
    db: DbEngine, conversation_id: int, step: Callable[[Session, Conversation], object]
) -> None:
    with session_scope(db) as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        step(session, conversation)


def say(role: Role, text: str, **kwargs: object) -> Callable[[Session, Conversation], object]:
    return lambda session, conversation: append_message(
        session=session, conversation=conversation, role=role, text=text, **kwargs
    )


def serving_ids(
    responder: Responder, engine: EmbeddedEngine, settings: Settings, tenant: int, cid: int
) -> list[int]:
    plan = responder.plan_reply(tenant, cid, set())
    assert plan is not None, "the bot would not answer"
    return engine.prompt_ids(plan.prompt, settings.max_new_tokens)


def test_a_stored_conversation_gives_the_same_token_ids_to_serving_and_training(
    db: DbEngine, engine: EmbeddedEngine, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url, finetune_validation_fraction=0.5)
    tenant, _ = make_tenant(db, "acme")
    assert tenant.id is not None
    cid = add_conversation(
        db,
        tenant.id,
        [
            (Role.CUSTOMER, "Hi, I ordered a latte for pickup at nine."),
            (Role.CUSTOMER, "It is nine thirty now and it is still not ready."),  # consecutive
            (Role.BOT, "I am sorry about the wait. Let me check that for you."),
        ],
        customer_id=add_customer(db, tenant.id),
        resolved=False,
    )
    act(
        db,
        cid,
        lambda s, c: handoff.escalate(session=s, conversation=c, reason="late", notice=ESCALATED),
    )
    act(db, cid, say(Role.AGENT, "The espresso machine is down at that shop.", internal_note=True))
    act(
        db,
        cid,
        lambda s, c: handoff.take_over(
            session=s, conversation=c, agent_name="Sam", notice=agent_joined("Sam")
        ),
    )
    act(db, cid, say(Role.AGENT, "Hi, this is Sam. Your latte is being remade right now."))
    act(db, cid, lambda s, c: handoff.hand_back(session=s, conversation=c, notice=HANDED_BACK))
    act(db, cid, say(Role.CUSTOMER, "Thank you!"))
    act(db, cid, say(Role.CUSTOMER, "Can I also add a blueberry muffin?"))

    served = serving_ids(responder_for(db, engine, settings), engine, settings, tenant.id, cid)

    act(db, cid, say(Role.AGENT, "Of course, one blueberry muffin is added to your order."))
    act(db, cid, lambda s, c: handoff.resolve(session=s, conversation=c, notice=RESOLVED))
    with session_scope(db) as session:
        dataset = build_dataset(
            session=session, tenant_id=tenant.id, settings=settings, since=None, until=utcnow()
        )
    (example,) = [e for e in dataset.train + dataset.validation if e.conversation_id == cid]
    ids, labels = encode(engine.tokenizer, example.turns, settings.training.max_seq_len)
    last_reply = max(
        i for i, label in enumerate(labels) if label != IGNORE and labels[i - 1] == IGNORE
    )

    assert ids[:last_reply] == served
    prompt = engine.tokenizer.decode(served)
    assert prompt.startswith(f"<|im_start|>system\n{settings.system_prompt}<|im_end|>")
    assert "at nine.\nIt is nine thirty" in prompt  # one customer turn, not two
    assert "espresso machine" not in prompt and "joined the chat" not in prompt


def test_three_long_customer_messages_keep_the_system_prompt_and_fit_the_context(
    db: DbEngine, engine: EmbeddedEngine, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url, max_new_tokens=200)
    tenant, _ = make_tenant(db, "acme")
    assert tenant.id is not None
    cid = add_conversation(
        db,
        tenant.id,
        [(Role.CUSTOMER, long_message(n)) for n in range(3)],
        customer_id=add_customer(db, tenant.id),
        resolved=False,
    )

    served = serving_ids(responder_for(db, engine, settings), engine, settings, tenant.id, cid)

    assert len(served) <= settings.context_tokens - settings.max_new_tokens
    prompt = engine.tokenizer.decode(served)
    assert prompt.startswith(f"<|im_start|>system\n{settings.system_prompt}<|im_end|>")
    assert prompt.endswith(long_message(2)[-200:] + "<|im_end|>\n<|im_start|>assistant\n")


def test_training_drops_the_oldest_turns_but_keeps_the_system_prompt(
    engine: EmbeddedEngine,
) -> None:
    from core.chat_format import Turn

    turns = [Turn("system", "You are the support assistant of a coffee shop.")]
    for n in range(6):
        turns += [Turn("user", long_message(n, 600)), Turn("assistant", f"Answer {n}.", train=True)]

    ids, labels = encode(engine.tokenizer, turns, max_len=512)

    text = engine.tokenizer.decode(ids)
    assert len(ids) <= 512
    assert text.startswith("<|im_start|>system\nYou are the support assistant of a coffee shop.")
    assert "Answer 5." in text and "Answer 0." not in text  # newest kept, oldest dropped
    assert f"<|im_start|>user\n{long_message(5, 600)}<|im_end|>" in text  # kept turns are whole
