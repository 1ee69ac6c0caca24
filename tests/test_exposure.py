"""`supportloop serve` on a public address refuses unsafe settings, each with what to set;
on loopback the zero-set-up defaults stay."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from chat_service.exposure import exposure_problems, is_loopback
from core.migrate import open_database
from core.settings import get_settings
from supportloop.cli import app as cli
from tests.conftest import MODEL_DIR, make_settings
from tests.factories import make_tenant

STRONG = "s" * 32


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("shop.example", False),
    ],
)
def test_only_loopback_addresses_count_as_private(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_each_unsafe_setting_is_named_with_what_to_set(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'e.db'}")
    make_tenant(db, "acme")  # no allowed origins
    make_tenant(db, "globex", allowed_origins=["https://globex.example"])
    weak = make_settings(
        tmp_path,
        "sqlite://",
        host="0.0.0.0",
        admin_token="short",
        secret_key="also-short",
        cookie_secure=False,
        demo_tenant="demo",
    )
    problems = exposure_problems(weak, db)
    text = "\n".join(problems)
    assert len(problems) == 5
    assert "SUPPORTLOOP_ADMIN_TOKEN is 5 bytes" in text and "openssl rand -hex 32" in text
    assert "SUPPORTLOOP_SECRET_KEY is 10 bytes" in text
    assert "SUPPORTLOOP_COOKIE_SECURE" in text
    assert "SUPPORTLOOP_DEMO_TENANT=" in text
    assert "tenant 'acme'" in text and "--origin" in text and "globex" not in text

    assert exposure_problems(weak.model_copy(update={"host": "127.0.0.1"}), db) == []
    with_origins = open_database(f"sqlite:///{tmp_path / 'f.db'}")
    make_tenant(with_origins, "globex", allowed_origins=["https://globex.example"])
    safe = weak.model_copy(
        update={"admin_token": STRONG, "secret_key": "", "cookie_secure": True, "demo_tenant": ""}
    )
    assert exposure_problems(safe, with_origins) == []


def test_serve_refuses_to_start_in_public_with_the_defaults(tmp_path: Path) -> None:
    env = {
        "SUPPORTLOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SUPPORTLOOP_VAR_DIR": str(tmp_path),
        "SUPPORTLOOP_MODEL_DIR": str(MODEL_DIR),
        "SUPPORTLOOP_ADMIN_TOKEN": "changeme",
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"], env=env)
    finally:
        get_settings.cache_clear()
    output = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0" in output
    assert "SUPPORTLOOP_ADMIN_TOKEN is 8 bytes" in output and "SUPPORTLOOP_DEMO_TENANT=" in output
