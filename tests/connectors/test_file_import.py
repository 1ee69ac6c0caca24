"""Importing conversation files (JSONL and CSV) into real databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select
from typer.testing import CliRunner

from connectors.file_import import import_file
from core.db import session_scope
from core.models import Message, Role
from supportloop.cli import app as cli
from tests.conftest import REPO_ROOT
from tests.factories import make_tenant, messages_of

COFFEE = REPO_ROOT.parent / "shared" / "datasets" / "coffee-orders" / "conversations.jsonl"
needs_coffee = pytest.mark.skipif(not COFFEE.is_file(), reason=f"{COFFEE} is not present")


def transcript(db: DbEngine, external_id: str) -> list[tuple[int, str, str]]:
    return [(m.seq, m.role, m.text) for m in messages_of(db, external_id)]


@pytest.mark.slow
@needs_coffee
def test_the_coffee_orders_dataset_imports_whole_and_twice_changes_nothing(tmp_path: Path) -> None:
    from core.db import create_db_engine
    from core.migrate import upgrade_database

    db = create_db_engine(f"sqlite:///{tmp_path / 'coffee.db'}")
    upgrade_database(db)
    tenant, _ = make_tenant(db)
    lines = [json.loads(line) for line in COFFEE.read_text().splitlines() if line.strip()]
    report = import_file(db=db, tenant_id=tenant.id, path=COFFEE)
    assert report.errors == []
    assert report.conversations_created == len(lines) == 2000
    assert report.messages_created == sum(len(c["messages"]) for c in lines)
    again = import_file(db=db, tenant_id=tenant.id, path=COFFEE)
    assert (again.conversations_created, again.messages_created) == (0, 0)
    assert again.messages_skipped == report.messages_created
    first = lines[0]
    assert [text for _, _, text in transcript(db, first["external_id"])] == [
        m["text"].strip() for m in first["messages"]
    ]


def write(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_csv_with_bom_crlf_multiline_timezones_duplicates_and_disorder(
    db: DbEngine, tmp_path: Path
) -> None:
    tenant, _ = make_tenant(db)
    path = write(
        tmp_path / "log.csv",
        "conversation_id,role,text,timestamp\n"
        'c-1,agent,"Sorry about that.\nTracking: 1Z999",2025-01-08T14:26:02Z\n'
        "c-1,customer,My order never arrived,2025-01-08T16:25:30+02:00\n"
        "c-1,customer,My order never arrived,2025-01-08T16:25:30+02:00\n"
        "c-2,user,Do you have decaf?,2025-01-09T09:00:00-05:00\n",
        bom=True,
        crlf=True,
    )
    report = import_file(db=db, tenant_id=tenant.id, path=path)
    assert report.errors == []
    assert (report.conversations_created, report.messages_created, report.messages_skipped) == (
        2,
        3,
        1,
    )
    assert transcript(db, "c-1") == [
        (1, Role.CUSTOMER, "My order never arrived"),  # 14:25:30 UTC, before the agent's reply
        (2, Role.AGENT, "Sorry about that.\r\nTracking: 1Z999"),
    ]
    with session_scope(db) as session:
        decaf = session.exec(select(Message).where(Message.text == "Do you have decaf?")).one()
        assert decaf.sent_at == datetime(2025, 1, 9, 14, 0, tzinfo=UTC)


def test_bad_rows_are_reported_with_line_numbers_and_skipped(db: DbEngine, tmp_path: Path) -> None:
    tenant, _ = make_tenant(db)
    path = write(
        tmp_path / "log.csv",
        "conversation_id,role,text,timestamp\n"
        "c-1,customer,Hello,2025-01-08T14:25:30Z\n"
        "c-1,wizard,Abracadabra,2025-01-08T14:25:31Z\n"
        "c-1,agent,Hi there,2025-01-08 14:26:00\n"
        "c-1,agent,,2025-01-08T14:27:00Z\n"
        ",agent,orphan,2025-01-08T14:27:00Z\n"
        "c-1,agent,How can I help?,2025-01-08T14:28:00Z\n",
    )
    report = import_file(db=db, tenant_id=tenant.id, path=path)
    assert [line for line, _ in report.errors] == [3, 4, 5, 6]
    reasons = dict(report.errors)
    assert "unknown role 'wizard'" in reasons[3]
    assert "no time zone" in reasons[4]
    assert "empty text" in reasons[5]
    assert "empty conversation_id" in reasons[6]
    assert [text for _, _, text in transcript(db, "c-1")] == ["Hello", "How can I help?"]


def test_jsonl_bad_lines_are_reported_and_the_rest_imports(db: DbEngine, tmp_path: Path) -> None:
    tenant, _ = make_tenant(db)
    good = {
        "external_id": "j-1",
        "channel": "chat",
        "subject": "latte",
        "messages": [
            {"role": "customer", "text": "One latte please", "sent_at": "2025-01-08T14:25:30Z"},
            {"role": "agent", "text": "Coming up!", "sent_at": "2025-01-08T14:25:40Z"},
        ],
    }
    path = write(
        tmp_path / "log.jsonl",
        "{not json\n" + json.dumps(good) + "\n" + json.dumps({"external_id": "j-2"}) + "\n",
    )
    report = import_file(db=db, tenant_id=tenant.id, path=path)
    assert [line for line, _ in report.errors] == [1, 3]
    assert "missing messages" in dict(report.errors)[3]
    assert [role for _, role, _ in transcript(db, "j-1")] == [Role.CUSTOMER, Role.AGENT]


def test_cli_import_reports_what_it_did(tmp_path: Path) -> None:
    from core.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    path = write(
        tmp_path / "log.csv",
        "conversation_id,role,text,timestamp\nc-1,customer,Hi,2025-01-08T14:25:30Z\nc-1,robot,x,2025-01-08T14:25:31Z\n",
    )
    runner = CliRunner()
    env = {"SUPPORTLOOP_DATABASE_URL": url}
    get_settings.cache_clear()
    try:
        assert runner.invoke(cli, ["tenant", "create", "acme"], env=env).exit_code == 0
        get_settings.cache_clear()
        result = runner.invoke(cli, ["import", str(path), "--tenant", "acme"], env=env)
        get_settings.cache_clear()
        missing = runner.invoke(cli, ["import", str(path), "--tenant", "nobody"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "line 3: unknown role 'robot'" in result.output
    assert "1 messages stored" in result.output
    assert missing.exit_code == 2 and "not found" in missing.output
