"""`supportloop knowledge add | list | remove | sync` on a folder of articles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import get_settings
from supportloop.cli import app as cli
from tests.knowledge.corpus import write_articles


@pytest.fixture
def run(tmp_path: Path) -> Iterator[object]:
    env = {"SUPPORTLOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    runner = CliRunner()

    def invoke(*args: str) -> object:
        get_settings.cache_clear()
        return runner.invoke(cli, list(args), env=env)

    yield invoke
    get_settings.cache_clear()


def said(result: object) -> str:
    """The output with the terminal's line wrapping undone."""
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def test_add_list_remove_and_sync_a_folder(run, tmp_path: Path) -> None:  # noqa: ANN001
    folder = write_articles(tmp_path / "help")
    assert run("tenant", "create", "acme").exit_code == 0
    added = run("knowledge", "add", str(folder), "--tenant", "acme")
    assert added.exit_code == 0, added.output
    assert "5 added, 0 changed, 0 removed, 0 unchanged" in said(added)

    listed = run("knowledge", "list", "--tenant", "acme")
    assert "delivery-2025" in said(listed) and "superseded" in said(listed)

    (folder / "wifi.txt").unlink()
    synced = run("knowledge", "sync", "--tenant", "acme")
    assert synced.exit_code == 0 and "0 added, 0 changed, 1 removed, 4 unchanged" in said(synced)

    assert run("knowledge", "remove", "pickup", "--tenant", "acme").exit_code == 0
    missing = run("knowledge", "remove", "pickup", "--tenant", "acme")
    assert missing.exit_code == 2 and "no knowledge document 'pickup'" in said(missing)
    nobody = run("knowledge", "add", str(folder), "--tenant", "nobody")
    assert nobody.exit_code == 2 and "nobody" in said(nobody)


def test_a_bad_document_is_named_and_nothing_is_indexed(run, tmp_path: Path) -> None:  # noqa: ANN001
    folder = write_articles(
        tmp_path / "help", {"ok.md": "# Fine", "bad.md": "---\nstatus: old\n---\nx"}
    )
    assert run("tenant", "create", "acme").exit_code == 0
    result = run("knowledge", "add", str(folder), "--tenant", "acme")
    assert result.exit_code == 2 and "bad.md: status must be" in said(result)
    assert said(run("knowledge", "list", "--tenant", "acme")) == "0 documents"
