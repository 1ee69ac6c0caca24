"""What every command shares: the console, the common options, the configured database, and
how a failure becomes a red line and an exit code."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy.engine import Engine as DbEngine

from core.migrate import open_database
from core.settings import Settings, get_settings

console = Console()

TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant slug")]
UrlOption = Annotated[
    str | None, typer.Option(help="Service URL (default: host and port settings)")
]


def database(settings: Settings | None = None) -> DbEngine:
    """The configured database, migrated to the current schema."""
    return open_database((settings or get_settings()).resolved_database_url)


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def fail(message: object, code: int = 2) -> NoReturn:
    # Not wrapped (a path or id stays whole for grep), and never read as markup: a message may
    # quote user input with [brackets] in it.
    console.print(str(message), style="red", soft_wrap=True, markup=False, highlight=False)
    raise typer.Exit(code)


@contextmanager
def failing_on(*errors: type[Exception], code: int = 2) -> Iterator[None]:
    """Show these errors as a red line and exit with ``code`` (no traceback: they are the
    user's to fix, and their messages say how)."""
    try:
        yield
    except errors as exc:
        fail(exc, code)
