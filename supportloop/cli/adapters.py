"""`adapters list|publish|activate|rollback`: the hot-swap protocol of a running service, over
its admin API (the service owns the engine, so it is the one that loads and switches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import typer
from rich.table import Table

from core.settings import get_settings
from supportloop.cli.terminal import TenantOption, UrlOption, console, fail

adapters_app = typer.Typer(help="Adapter versions of a running service (admin token).")


def _admin_call(method: str, path: str, url: str | None, body: dict[str, str] | None = None) -> Any:
    settings = get_settings()
    base = url or f"http://{settings.host}:{settings.port}"
    try:
        response = httpx.request(
            method,
            f"{base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {settings.admin_token}"},
            timeout=300,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the service at {base}: {exc}")
    if response.status_code >= 400:
        fail(f"{response.status_code}: {response.json().get('detail', response.text)}", code=1)
    return response.json()


@adapters_app.command("list")
def adapters_list(tenant: TenantOption, url: UrlOption = None) -> None:
    """Versions of the tenant's adapter, newest first."""
    data = _admin_call("GET", f"/v1/admin/tenants/{tenant}/adapters", url)
    table = Table("name", "status", "loaded", "created", "reason")
    for item in data["items"]:
        marker = " (active)" if item["name"] == data["active"] else ""
        marker += " (previous)" if item["name"] == data["previous"] else ""
        table.add_row(
            item["name"] + marker,
            item["status"],
            "yes" if item["name"] in data["loaded"] else "",
            item["created_at"][:19],
            item["status_reason"] or "",
        )
    console.print(table)


@adapters_app.command("publish")
def adapters_publish(name: str, path: Path, tenant: TenantOption, url: UrlOption = None) -> None:
    """Register an adapter directory as a new version and hot-swap it in."""
    body = {"name": name, "path": str(path.resolve())}
    data = _admin_call("POST", f"/v1/admin/tenants/{tenant}/adapters", url, body)
    console.print(f"{data['name']} is active")


@adapters_app.command("activate")
def adapters_activate(name: str, tenant: TenantOption, url: UrlOption = None) -> None:
    """Make an existing version the active one."""
    data = _admin_call("POST", f"/v1/admin/tenants/{tenant}/adapters/{name}/activate", url)
    console.print(f"{data['name']} is active")


@adapters_app.command("rollback")
def adapters_rollback(tenant: TenantOption, url: UrlOption = None) -> None:
    """Return to the previous version (still loaded, so instant)."""
    data = _admin_call("POST", f"/v1/admin/tenants/{tenant}/adapters/rollback", url)
    console.print(f"rolled back: {data['name']} is active")
