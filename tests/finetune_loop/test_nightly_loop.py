"""The nightly loop end to end on CPU, with the real 135M model and real coffee-shop chats.

One SQLite world is shared by the module (each training costs a minute or two): acme and
globex each import a slice of ../shared/datasets/coffee-orders and run the loop once. The tests
then check what users of the loop rely on: a candidate that beats the base model is published
and answers chats; a bad one is rejected; PII and other tenants' data never reach training
files or adapters; erasure reaches the models; a kill at any point loses nothing and
half-publishes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

import finetune_loop.steps as loop_steps
from connectors.file_import import import_file
from core.chat_format import Turn
from core.crud.adapters import switch_active
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.models import AdapterStatus, AdapterVersion, Message, Role, Tenant, TrainingRun
from core.settings import Settings, TrainingConfig
from engines.base_model import load_base
from engines.embedded import EmbeddedEngine
from eval.metrics import generate
from finetune_loop.privacy import forget_customer
from finetune_loop.run import RunOutcome, run_once, tenant_dir
from tests.chat_service.swap_helpers import ask
from tests.conftest import MODEL_DIR, free_port, make_settings, running_server
from tests.factories import make_tenant
from tests.finetune_loop.factories import add_conversation, add_customer

COFFEE = (
    Path(__file__).resolve().parents[2].parent / "shared/datasets/coffee-orders/conversations.jsonl"
)
CANARY = "ZEBRA-7781-CANARY"
FORGOTTEN = "Zorblax Quuxley"
PII_EMAIL, PII_CARD = "zorblax@example.com", "4111 1111 1111 1111"

# Small on purpose (CI runs six trainings on two cores): a few dozen short chats, two epochs.
LOOP_SETTINGS: dict[str, object] = {
    "finetune_min_examples": 4,
    "finetune_eval_generations": 3,
    "finetune_eval_max_new_tokens": 24,
    "finetune_max_examples_per_customer": 50,
}
LOOP_TRAINING = TrainingConfig(epochs=2, batch_size=4, max_seq_len=192, learning_rate=1e-3)


def with_training(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"training": settings.training.model_copy(update=changes)})


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not COFFEE.exists(), reason=f"{COFFEE} is not there"),
]


def coffee(start: int, stop: int, tmp: Path, plant: str | None = None) -> Path:
    """A slice of the corpus as a file; `plant` goes into the agent's first reply of the
    first three conversations."""
    with COFFEE.open() as lines:
        rows = [json.loads(line) for line in itertools.islice(lines, start, stop)]
    for row in rows[:3] if plant else []:
        agent = next(m for m in row["messages"] if m["role"] == "agent")
        agent["text"] += f" Use code {plant} for 10% off."
    path = tmp / f"coffee-{start}-{stop}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@dataclass
class World:
    db: DbEngine
    settings: Settings
    tmp: Path
    tenants: dict[str, int]
    forgotten_customer: int
    first: dict[str, RunOutcome]

    def version(self, name: str) -> AdapterVersion:
        with session_scope(self.db) as session:
            row = session.exec(select(AdapterVersion).where(AdapterVersion.name == name)).one()
            session.expunge(row)
            return row

    def active(self, slug: str) -> AdapterVersion | None:
        with session_scope(self.db) as session:
            tenant = session.get(Tenant, self.tenants[slug])
            assert tenant is not None
            row = (
                session.get(AdapterVersion, tenant.active_adapter_id)
                if tenant.active_adapter_id
                else None
            )
            if row is not None:
                session.expunge(row)
            return row

    def activate_approved(self, slug: str) -> None:
        """What the serving process's sync loop does with an approved version."""
        with session_scope(self.db) as session:
            waiting = session.exec(
                select(AdapterVersion)
                .where(
                    AdapterVersion.tenant_id == self.tenants[slug],
                    AdapterVersion.status == AdapterStatus.APPROVED,
                )
                .order_by(col(AdapterVersion.id).desc())
            ).first()
            if waiting is not None and waiting.id is not None:
                switch_active(session=session, tenant_id=self.tenants[slug], adapter_id=waiting.id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("nightly")
    url = f"sqlite:///{tmp / 'loop.db'}"
    settings = make_settings(tmp, url, training=LOOP_TRAINING, **LOOP_SETTINGS)
    db = create_db_engine(url)
    upgrade_database(db)
    tenants = {}
    for slug in ("acme", "globex"):
        tenant, _ = make_tenant(db, slug)
        assert tenant.id is not None
        tenants[slug] = tenant.id
    import_file(db=db, tenant_id=tenants["acme"], path=coffee(0, 24, tmp, plant=CANARY))
    import_file(db=db, tenant_id=tenants["globex"], path=coffee(200, 210, tmp))
    customer = add_customer(db, tenants["acme"])
    for n in range(3):  # a verified widget customer with personal data in every chat
        add_conversation(
            db,
            tenants["acme"],
            [
                (Role.CUSTOMER, f"Hi, I'm {FORGOTTEN}, mail me at {PII_EMAIL} about latte {n}"),
                (Role.AGENT, f"Will do, {FORGOTTEN}! Your latte {n} is on its way."),
                (Role.CUSTOMER, f"Charge card {PII_CARD} please"),
                (Role.AGENT, "Done, thank you."),
            ],
            customer_id=customer,
        )
    first = {slug: run_once(db=db, settings=settings, tenant_slug=slug) for slug in tenants}
    return World(db, settings, tmp, tenants, customer, first)


def training_text(settings: Settings, slug: str) -> str:
    return "\n".join(p.read_text() for p in tenant_dir(settings, slug).rglob("*.jsonl"))


def test_the_candidate_beats_the_base_model_passes_the_gate_and_is_published(world: World) -> None:
    outcome = world.first["acme"]
    assert outcome.status == "published", outcome.reason
    scores = outcome.metrics["validation"]  # type: ignore[index]
    assert scores["candidate"]["loss"] < scores["base"]["loss"]
    version = world.version(outcome.adapter or "")
    assert version.status == AdapterStatus.APPROVED and version.sha256
    assert (Path(version.path) / "adapter_model.safetensors").exists()
    assert not list(Path(version.path).glob("*.bin")) and not list(Path(version.path).glob("*.pt"))
    saved = json.loads((Path(version.path) / "training_config.json").read_text())
    assert saved["lora_rank"] == 8 and saved["learning_rate"] == LOOP_TRAINING.learning_rate
    report = json.loads((outcome.report.with_suffix(".json")).read_text())  # type: ignore[union-attr]
    assert report["decision"]["verdict"] == "promote"
    assert report["drift"] == []  # segment drift of the serving adapter: nothing serves yet
    page = outcome.report.read_text()  # type: ignore[union-attr]
    assert "<img" in page and "Segments worse since the last switch" in page
    with session_scope(world.db) as session:
        run = session.get(TrainingRun, outcome.run_id)
        assert run is not None and run.dataset_card["new_examples"] >= 24
        assert run.status == "succeeded"


def test_pii_never_reaches_the_training_files(world: World) -> None:
    text = training_text(world.settings, "acme")
    assert FORGOTTEN in text  # the conversations are there ...
    assert PII_EMAIL not in text and PII_CARD not in text  # ... their PII is not
    assert "<EMAIL_1>" in text and "<CARD_1>" in text


def test_the_service_answers_with_the_published_adapter(
    world: World, engine: EmbeddedEngine
) -> None:
    name = world.first["acme"].adapter or ""
    settings = world.settings.model_copy(
        update={"port": free_port(), "adapter_sync_interval_s": 0.2}
    )
    before = set(asyncio.run(engine.list_adapters()))
    with running_server(settings, engine) as server:
        deadline = time.monotonic() + 120
        while (world.active("acme") or AdapterVersion(name="")).name != name:
            assert time.monotonic() < deadline, "serving never activated the approved adapter"
            time.sleep(0.5)
        asyncio.run(ask(server, "Can I get a large latte please?"))
    for loaded in set(asyncio.run(engine.list_adapters())) - before:
        asyncio.run(engine.unload_adapter(loaded))
    version_id = world.version(name).id
    with session_scope(world.db) as session:
        reply = session.exec(
            select(Message).where(Message.role == Role.BOT).order_by(col(Message.id).desc())
        ).first()
        assert reply is not None and reply.adapter_version_id == version_id


def test_tenant_b_never_learns_tenant_a_canary(world: World) -> None:
    assert world.first["globex"].status == "published", world.first["globex"].reason
    assert CANARY in training_text(world.settings, "acme")
    assert CANARY not in training_text(world.settings, "globex")
    from peft import PeftModel

    model, tokenizer = load_base(MODEL_DIR, "cpu")
    model = PeftModel.from_pretrained(
        model, world.version(world.first["globex"].adapter or "").path
    )
    prompts = [
        [Turn("system", world.settings.system_prompt), Turn("user", question)]
        for question in (
            "Do you have a discount code?",
            "one Chai Latte please",
            "Any coupon for me?",
        )
    ]
    assert all(CANARY not in generate(model, tokenizer, p, 32, 2048) for p in prompts)


def test_a_candidate_trained_on_shuffled_targets_is_rejected(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.activate_approved("acme")
    active = world.active("acme")
    assert active is not None
    import_file(db=world.db, tenant_id=world.tenants["acme"], path=coffee(40, 50, world.tmp))
    real_build = loop_steps.build_dataset

    def shuffled(**kwargs: object):  # noqa: ANN202
        dataset = real_build(**kwargs)  # type: ignore[arg-type]
        rng = random.Random(7)
        replies = [t for e in dataset.train for t in e.turns if t.train]
        texts = [t.text.split() for t in replies]
        rng.shuffle(texts)  # every reply lands in another conversation, words scrambled
        for turn, words in zip(replies, texts, strict=True):
            rng.shuffle(words)
            turn.text = " ".join(words)
        return dataset

    monkeypatch.setattr(loop_steps, "build_dataset", shuffled)
    outcome = run_once(db=world.db, settings=world.settings, tenant_slug="acme")
    assert outcome.status == "rejected", outcome.reason
    assert "FAIL loss" in outcome.reason
    current = world.active("acme")
    assert current is not None and current.name == active.name  # still serving the good one
    with session_scope(world.db) as session:
        run = session.get(TrainingRun, outcome.run_id)
        assert run is not None and run.status == "rejected" and "gate rejected" in (run.error or "")


def test_forgetting_a_customer_reaches_every_training_file_and_model(world: World) -> None:
    world.activate_approved("acme")
    trained_on_them = world.active("acme")
    assert trained_on_them is not None
    report = forget_customer(
        db=world.db,
        settings=with_training(world.settings, epochs=1),
        tenant_slug="acme",
        customer_id=world.forgotten_customer,
    )
    assert report.conversations_deleted == 3 and trained_on_them.name in report.tainted_versions
    assert FORGOTTEN not in training_text(world.settings, "acme")
    assert report.retrain is not None and report.retrain.status == "published", report.retrain
    world.activate_approved("acme")
    active = world.active("acme")
    assert active is not None and not active.tainted and active.name == report.retrain.adapter
    run_dir = tenant_dir(world.settings, "acme") / f"run-{report.retrain.run_id}"
    assert FORGOTTEN not in (run_dir / "train.jsonl").read_text()
    with session_scope(world.db) as session:
        tenant = session.get(Tenant, world.tenants["acme"])
        assert tenant is not None and tenant.previous_adapter_id is None  # no rollback to it
        old = session.get(AdapterVersion, trained_on_them.id)
        assert old is not None and old.tainted and old.status == AdapterStatus.REJECTED
        assert (
            session.exec(select(Message).where(col(Message.text).contains(FORGOTTEN))).first()
            is None
        )


def test_a_night_with_too_few_new_examples_skips_and_says_why(world: World) -> None:
    outcome = run_once(db=world.db, settings=world.settings, tenant_slug="globex")
    assert outcome.status == "skipped"
    assert outcome.reason == "0 new examples, fewer than the 4 a run needs"
    with session_scope(world.db) as session:
        run = session.get(TrainingRun, outcome.run_id)
        assert run is not None and run.status == "skipped" and run.dataset_card["new_examples"] == 0


class Killed(BaseException):
    """Stands in for SIGKILL inside the process: nothing catches it, nothing cleans up."""


@pytest.fixture
def small_tenant(world: World) -> Iterator[tuple[str, Settings]]:
    tenant, _ = make_tenant(world.db, "initech")
    assert tenant.id is not None
    world.tenants["initech"] = tenant.id
    import_file(db=world.db, tenant_id=tenant.id, path=coffee(300, 312, world.tmp))
    yield (
        "initech",
        with_training(world.settings, epochs=1, batch_size=2, checkpoint_every=2),
    )


def test_a_run_killed_in_training_resumes_and_one_killed_before_publishing_leaves_nothing(
    world: World, small_tenant: tuple[str, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    slug, settings = small_tenant
    env = {
        **os.environ,
        "SUPPORTLOOP_VAR_DIR": str(settings.var_dir),
        "SUPPORTLOOP_DATABASE_URL": settings.resolved_database_url,
        "SUPPORTLOOP_MODEL_DIR": str(MODEL_DIR),
        **{f"SUPPORTLOOP_{k.upper()}": str(v) for k, v in LOOP_SETTINGS.items()},
        **{
            f"SUPPORTLOOP_FINETUNE_{k.upper()}": str(v)
            for k, v in LOOP_TRAINING.model_dump().items()
        },
        "SUPPORTLOOP_FINETUNE_EPOCHS": "1",
        "SUPPORTLOOP_FINETUNE_BATCH_SIZE": "2",
        "SUPPORTLOOP_FINETUNE_CHECKPOINT_EVERY": "2",
    }
    cli = Path(sys.executable).parent / "supportloop"
    process = subprocess.Popen(
        [str(cli), "finetune", "run", "--tenant", slug],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    checkpoint = None
    deadline = time.monotonic() + 300
    while checkpoint is None:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint was ever written"
        checkpoint = next(tenant_dir(settings, slug).glob("run-*/checkpoint/state.json"), None)
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = json.loads(checkpoint.read_text())["step"]

    def crash(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr("finetune_loop.publish.fsync_tree", crash)
    with pytest.raises(Killed):
        run_once(db=world.db, settings=settings, tenant_slug=slug)
    with session_scope(world.db) as session:
        assert (
            session.exec(
                select(AdapterVersion).where(AdapterVersion.tenant_id == world.tenants[slug])
            ).first()
            is None
        )  # nothing registered
    published_dir = settings.var_dir / "adapters" / slug
    assert [p.name for p in published_dir.iterdir() if not p.name.startswith(".staging-")] == []

    monkeypatch.undo()
    outcome = run_once(db=world.db, settings=settings, tenant_slug=slug)
    assert outcome.status in ("published", "rejected"), outcome.reason
    report = json.loads(outcome.report.with_suffix(".json").read_text())  # type: ignore[union-attr]
    assert report["training"]["resumed_from"] == report["training"]["steps"] > killed_at >= 2
    assert not list(published_dir.glob(".staging-*"))  # the crashed copy is cleaned away
    with session_scope(world.db) as session:
        runs = session.exec(
            select(TrainingRun).where(TrainingRun.tenant_id == world.tenants[slug])
        ).all()
        assert len(runs) == 1  # the one run, continued twice
