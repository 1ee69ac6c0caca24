"""Real-browser fixtures: Debian's Chromium driven by Playwright, the real app on a live
uvicorn, and a tiny "customer website" on its own origin that embeds the widget with one tag.

Every scenario saves a screenshot under var/test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chat_service.server import BackgroundServer
from core.crud.agents import create_agent
from core.db import session_scope
from core.models import BotMode, Tenant
from engines.embedded import EmbeddedEngine
from tests.conftest import REPO_ROOT, free_port, make_settings, running_server
from tests.factories import make_tenant

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "screenshots"
AGENT_EMAIL, AGENT_PASSWORD, AGENT_NAME = "dana@acme.test", "correct horse battery", "Dana"


@pytest.fixture(scope="module")
def browser(engine: EmbeddedEngine) -> Iterator[Any]:
    """Sync Playwright keeps an event loop running on this thread while it is open, so no
    asyncio test can run meanwhile: the browser lives for one module only (a second to start),
    and depends on the engine so that the engine (started with asyncio.run) is up first."""
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@dataclass
class Site:
    """A customer's website on its own origin: path -> HTML."""

    origin: str
    pages: dict[str, str] = field(default_factory=dict)

    def shop_page(self, server: BackgroundServer, tenant: str = "acme", extra: str = "") -> str:
        self.pages["/"] = (
            "<!doctype html><html lang='en'><head><title>Acme coffee</title></head><body>"
            "<h1>Acme coffee</h1><p>Fresh beans every day.</p>"
            f'<script src="{server.http_url}/widget.js" data-tenant="{tenant}" {extra}></script>'
            "</body></html>"
        )
        return self.origin + "/"


@contextmanager
def serve_site() -> Iterator[Site]:
    port = free_port()
    site = Site(origin=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = site.pages.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as running:
        yield running


@pytest.fixture
def other_site() -> Iterator[Site]:
    with serve_site() as running:
        yield running


def ui_settings(tmp_path: Path, port: int, **overrides: object):  # noqa: ANN201
    return make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'ui.db'}",
        port=port,
        max_new_tokens=24,
        **overrides,
    )


def setup_tenant(server: BackgroundServer, site: Site, mode: BotMode = BotMode.AUTO) -> Tenant:
    """Tenant "acme" whose widget may run on ``site``, with one console agent."""
    db = server.app.state.services.db
    tenant, _ = make_tenant(db, "acme", allowed_origins=[site.origin], bot_mode=mode)
    assert tenant.id is not None
    with session_scope(db) as session:
        create_agent(
            session=session,
            tenant_id=tenant.id,
            email=AGENT_EMAIL,
            password=AGENT_PASSWORD,
            display_name=AGENT_NAME,
        )
    return tenant


@pytest.fixture
def live(tmp_path: Path, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    with running_server(ui_settings(tmp_path, free_port()), engine) as server:
        yield server


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def sign_in(browser: Any, server: BackgroundServer) -> Any:
    """An agent in their own browser context, signed in to the console."""
    page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    page.goto(f"{server.http_url}/console/login")
    page.get_by_label("Workspace").fill("acme")
    page.get_by_label("Email").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.http_url}/console")
    page.get_by_text("live", exact=True).wait_for()
    return page


def open_widget(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 1000, "height": 760}).new_page()
    page.goto(url)
    page.get_by_role("button", name="Open chat").click()
    return page


def say(page: Any, text: str) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")
