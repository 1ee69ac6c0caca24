"""API keys rotate and revoke through the admin API and the CLI; an old key is refused from
the moment the change is answered."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from chat_service.server import BackgroundServer
from core.crud.tenants import authenticate_api_key
from core.db import session_scope
from core.migrate import open_database
from core.settings import get_settings
from supportloop.cli import app as cli
from tests.conftest import ADMIN_TOKEN


def works(live: BackgroundServer, key: str) -> int:
    return httpx.get(
        f"{live.http_url}/v1/conversations", headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_rotating_over_the_admin_api_refuses_the_old_key_at_once(
    live_server: BackgroundServer,
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    base = f"{live_server.http_url}/v1/tenants"
    created = httpx.post(base, json={"slug": "acme"}, headers=admin).json()
    old = created["api_key"]
    assert works(live_server, old) == 200

    rotated = httpx.post(f"{base}/acme/keys/rotate", headers=admin)
    assert rotated.status_code == 201
    new = rotated.json()["api_key"]
    assert [k["prefix"] for k in rotated.json()["revoked"]] == [old[:10]]
    assert works(live_server, old) == 401 and works(live_server, new) == 200
    listed = httpx.get(f"{base}/acme/keys", headers=admin).json()
    assert [(k["prefix"], k["revoked_at"] is not None) for k in listed] == [
        (old[:10], True),
        (new[:10], False),
    ]
    assert "api_key" not in str(listed) and old not in str(listed)  # never the key itself

    assert httpx.delete(f"{base}/acme/keys/{new[:10]}", headers=admin).status_code == 204
    assert works(live_server, new) == 401
    assert httpx.delete(f"{base}/acme/keys/slk_nope", headers=admin).status_code == 404
    tenant_key = {"Authorization": f"Bearer {new}"}
    assert httpx.post(f"{base}/acme/keys/rotate", headers=tenant_key).status_code == 401


def test_the_cli_rotates_lists_and_revokes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    runner = CliRunner()

    def run(*args: str) -> str:
        get_settings.cache_clear()
        result = runner.invoke(cli, list(args), env={"SUPPORTLOOP_DATABASE_URL": url})
        get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        return result.output

    def tenant_of(key: str) -> str | None:
        with session_scope(open_database(url)) as session:
            tenant = authenticate_api_key(session=session, key=key)
            return tenant.slug if tenant else None

    first = run("tenant", "create", "acme").strip()
    second = run("tenant", "rotate-key", "acme").splitlines()[0].strip()
    assert tenant_of(first) is None and tenant_of(second) == "acme"
    listing = run("tenant", "keys", "acme")
    assert f"{first[:10]}" in listing and "revoked" in listing and "active" in listing
    run("tenant", "revoke-key", "acme", second[:10])
    assert tenant_of(second) is None
