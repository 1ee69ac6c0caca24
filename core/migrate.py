"""Alembic, driven from code so `supportloop serve` and the tests share one upgrade path."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from core.db import create_db_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py picks the live engine up from here rather than re-parsing a URL.
    config.attributes["engine"] = engine
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def open_database(url: str) -> Engine:
    """The database at ``url``, migrated to the current schema (what every command needs)."""
    engine = create_db_engine(url)
    upgrade_database(engine)
    return engine


def downgrade_database(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)
